//! The supervisor's health, as Druid's `SupervisorStateManager` (and its seekable-stream
//! subclass) keeps it: a state proposed during each run is accepted or not depending on the
//! counts of consecutive failed runs and tasks (threshold 3 both ways, Druid's defaults), and
//! the first run's states (`CONNECTING_TO_STREAM`, `DISCOVERING_INITIAL_TASKS`,
//! `CREATING_TASKS`) are shown only until a run succeeds.

use crate::time;
use serde_json::{json, Value};
use std::collections::VecDeque;

/// Druid's `druid.supervisor.*Threshold` defaults.
const THRESHOLD: u32 = 3;

/// A supervisor state (basic or seekable-stream specific).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started a run yet.
    Pending,
    /// Steady state.
    Running,
    /// Suspended.
    Suspended,
    /// Being stopped.
    Stopping,
    /// Runs keep failing.
    UnhealthySupervisor,
    /// Tasks keep failing.
    UnhealthyTasks,
    /// First run: connecting to the stream.
    ConnectingToStream,
    /// First run: looking for running tasks.
    DiscoveringInitialTasks,
    /// First run: creating tasks.
    CreatingTasks,
    /// The stream was never reached.
    UnableToConnectToStream,
    /// The stream was reached once, not any more.
    LostContactWithStream,
}

impl State {
    /// Druid's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Running => "RUNNING",
            State::Suspended => "SUSPENDED",
            State::Stopping => "STOPPING",
            State::UnhealthySupervisor => "UNHEALTHY_SUPERVISOR",
            State::UnhealthyTasks => "UNHEALTHY_TASKS",
            State::ConnectingToStream => "CONNECTING_TO_STREAM",
            State::DiscoveringInitialTasks => "DISCOVERING_INITIAL_TASKS",
            State::CreatingTasks => "CREATING_TASKS",
            State::UnableToConnectToStream => "UNABLE_TO_CONNECT_TO_STREAM",
            State::LostContactWithStream => "LOST_CONTACT_WITH_STREAM",
        }
    }

    /// Whether the state counts as healthy.
    pub fn healthy(self) -> bool {
        !matches!(
            self,
            State::UnhealthySupervisor
                | State::UnhealthyTasks
                | State::UnableToConnectToStream
                | State::LostContactWithStream
        )
    }

    fn first_run_only(self) -> bool {
        matches!(
            self,
            State::Pending
                | State::ConnectingToStream
                | State::DiscoveringInitialTasks
                | State::CreatingTasks
                | State::UnableToConnectToStream
        )
    }

    /// The basic state a specific one reports as `state`.
    pub fn basic(self) -> State {
        match self {
            State::ConnectingToStream | State::DiscoveringInitialTasks | State::CreatingTasks => {
                State::Running
            }
            State::UnableToConnectToStream | State::LostContactWithStream => {
                State::UnhealthySupervisor
            }
            s => s,
        }
    }
}

/// One entry of `recentErrors`.
#[derive(Debug, Clone)]
pub struct ErrorEvent {
    time: i64,
    class: String,
    message: String,
    stream: bool,
}

/// The state machine of one supervisor.
#[derive(Debug)]
pub struct StateManager {
    state: State,
    steady: State,
    at_least_one_success: bool,
    current_run_ok: bool,
    ok_runs: u32,
    failed_runs: u32,
    ok_tasks: u32,
    failed_tasks: u32,
    hit_run_threshold: bool,
    hit_task_threshold: bool,
    errors: VecDeque<ErrorEvent>,
}

impl StateManager {
    /// A new supervisor: PENDING, steady state RUNNING or SUSPENDED.
    pub fn new(suspended: bool) -> StateManager {
        StateManager {
            state: State::Pending,
            steady: if suspended {
                State::Suspended
            } else {
                State::Running
            },
            at_least_one_success: false,
            current_run_ok: true,
            ok_runs: 0,
            failed_runs: 0,
            ok_tasks: 0,
            failed_tasks: 0,
            hit_run_threshold: false,
            hit_task_threshold: false,
            errors: VecDeque::new(),
        }
    }

    /// Proposes a state; refused while unhealthy or outside the first run (Druid's
    /// `maybeSetState`).
    pub fn propose(&mut self, proposed: State) {
        if self.state == State::Stopping {
            return;
        }
        if self.failed_runs >= THRESHOLD {
            self.hit_run_threshold = true;
            self.state = self.unhealthy_state();
            return;
        }
        if self.failed_tasks >= THRESHOLD {
            self.hit_task_threshold = true;
            self.state = State::UnhealthyTasks;
            return;
        }
        if !self.state.healthy()
            && ((self.hit_run_threshold && self.ok_runs < THRESHOLD)
                || (self.hit_task_threshold && self.ok_tasks < THRESHOLD))
        {
            return;
        }
        if proposed == self.steady && !self.at_least_one_success {
            return;
        }
        if !proposed.first_run_only() || !self.at_least_one_success {
            self.state = proposed;
        }
    }

    fn unhealthy_state(&self) -> State {
        match self.errors.back() {
            Some(e) if e.stream => {
                if self.at_least_one_success {
                    State::LostContactWithStream
                } else {
                    State::UnableToConnectToStream
                }
            }
            _ => State::UnhealthySupervisor,
        }
    }

    /// Records an error of the current run (`stream`: the stream could not be reached).
    pub fn record_error(&mut self, class: &str, message: &str, stream: bool) {
        self.errors.push_back(ErrorEvent {
            time: time::now_millis(),
            class: class.to_owned(),
            message: message.to_owned(),
            stream,
        });
        while self.errors.len() > THRESHOLD as usize {
            self.errors.pop_front();
        }
        self.current_run_ok = false;
    }

    /// Lists a task's failure in `recentErrors` without failing the run (Druid learns of it
    /// through the task client, not from the stream).
    pub fn record_task_error(&mut self, message: &str) {
        self.errors.push_back(ErrorEvent {
            time: time::now_millis(),
            class: "org.apache.druid.rpc.ServiceClosedException".into(),
            message: message.to_owned(),
            stream: false,
        });
        while self.errors.len() > THRESHOLD as usize {
            self.errors.pop_front();
        }
    }

    /// Whether any run has succeeded.
    pub fn at_least_one_success(&self) -> bool {
        self.at_least_one_success
    }

    /// Records how a task ended.
    pub fn record_task(&mut self, success: bool) {
        if success {
            self.ok_tasks += 1;
            self.failed_tasks = 0;
        } else {
            self.failed_tasks += 1;
            self.ok_tasks = 0;
        }
    }

    /// Ends a run (Druid's `markRunFinished`).
    pub fn run_finished(&mut self) {
        self.at_least_one_success |= self.current_run_ok;
        if self.current_run_ok {
            self.ok_runs += 1;
            self.failed_runs = 0;
        } else {
            self.failed_runs += 1;
            self.ok_runs = 0;
        }
        self.propose(self.steady);
        self.current_run_ok = true;
    }

    /// Marks the supervisor as stopping (terminate, update).
    pub fn stopping(&mut self) {
        self.state = State::Stopping;
    }

    /// The detailed state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the state is healthy.
    pub fn healthy(&self) -> bool {
        self.state.healthy()
    }

    /// `recentErrors` as Druid lists them.
    pub fn recent_errors(&self) -> Value {
        self.errors
            .iter()
            .map(|e| {
                json!({"timestamp": time::iso(e.time), "exceptionClass": e.class,
                    "message": e.message, "streamException": e.stream})
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_states_then_running() {
        let mut m = StateManager::new(false);
        m.propose(State::ConnectingToStream);
        assert_eq!(m.state(), State::ConnectingToStream);
        m.propose(State::CreatingTasks);
        m.run_finished();
        assert_eq!(m.state(), State::Running);
        m.propose(State::ConnectingToStream);
        assert_eq!(
            m.state(),
            State::Running,
            "first-run states are not shown again"
        );
    }

    #[test]
    fn unreachable_stream_then_recovery() {
        let mut m = StateManager::new(false);
        for _ in 0..3 {
            m.propose(State::ConnectingToStream);
            m.record_error(
                "org.apache.druid.indexing.seekablestream.common.StreamException",
                "down",
                true,
            );
            m.run_finished();
        }
        assert_eq!(m.state(), State::UnableToConnectToStream);
        assert_eq!(m.state().basic(), State::UnhealthySupervisor);
        for i in 0..3 {
            m.run_finished();
            assert_eq!(m.healthy(), i == 2, "healthy only after three good runs");
        }
        assert_eq!(m.state(), State::Running);
        for _ in 0..3 {
            m.record_error("x", "down", true);
            m.run_finished();
        }
        assert_eq!(m.state(), State::LostContactWithStream);
    }

    #[test]
    fn failing_tasks() {
        let mut m = StateManager::new(false);
        m.run_finished();
        for _ in 0..3 {
            m.record_task(false);
        }
        m.run_finished();
        assert_eq!(m.state(), State::UnhealthyTasks);
    }
}
