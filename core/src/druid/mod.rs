pub mod task_spec;
