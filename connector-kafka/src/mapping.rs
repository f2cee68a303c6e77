//! Topic to dataSource: each dataSource's `topicPattern` (a Java-style regex that must match
//! the WHOLE topic name), `topicPattern.priority` (highest wins) and `useTopicAsDataSource`.
//!
//! Patterns are compiled with `fancy-regex`, which also understands the lookarounds that Java
//! regexes allow (the default pattern `(?!)` is an empty negative lookahead: it matches
//! nothing). Ties between equal priorities go to the dataSource listed first, so the choice is
//! stable (the original left it to hash order).

use fancy_regex::Regex;

use crate::error::KafkaError;

/// One dataSource's claim on topics.
#[derive(Debug, Clone)]
pub struct TopicRoute {
    /// The dataSource as named in the configuration file.
    pub config_name: String,
    /// The pattern as written.
    pub pattern: String,
    /// `topicPattern.priority`.
    pub priority: i64,
    /// `useTopicAsDataSource`.
    pub use_topic_as_data_source: bool,
    anchored: Regex,
}

impl TopicRoute {
    /// Compiles `pattern` so that it must match the whole topic name.
    pub fn new(
        config_name: &str,
        pattern: &str,
        priority: i64,
        use_topic_as_data_source: bool,
    ) -> Result<Self, KafkaError> {
        let anchored =
            Regex::new(&format!("^(?:{pattern})$")).map_err(|e| KafkaError::TopicPattern {
                data_source: config_name.to_string(),
                pattern: pattern.to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            config_name: config_name.to_string(),
            pattern: pattern.to_string(),
            priority,
            use_topic_as_data_source,
            anchored,
        })
    }

    /// Whether the pattern matches all of `topic`. A pattern too costly to evaluate (fancy
    /// regexes have a backtracking limit) counts as no match.
    pub fn matches(&self, topic: &str) -> bool {
        self.anchored.is_match(topic).unwrap_or(false)
    }
}

/// Where a topic's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Index of the dataSource in the configuration (in [`TopicMapper::routes`]).
    pub route: usize,
    /// The dataSource name events are sent to: the topic itself with `useTopicAsDataSource`,
    /// else the configured name.
    pub data_source: String,
}

/// All routes, ordered by priority (highest first; file order among equals).
#[derive(Debug, Clone)]
pub struct TopicMapper {
    routes: Vec<TopicRoute>,
    by_priority: Vec<usize>,
}

impl TopicMapper {
    /// A mapper over the routes, in configuration order.
    pub fn new(routes: Vec<TopicRoute>) -> Self {
        let mut by_priority: Vec<usize> = (0..routes.len()).collect();
        // A stable sort keeps file order among equal priorities.
        by_priority.sort_by_key(|&i| std::cmp::Reverse(routes[i].priority));
        Self {
            routes,
            by_priority,
        }
    }

    /// The routes in configuration order.
    pub fn routes(&self) -> &[TopicRoute] {
        &self.routes
    }

    /// The dataSource for `topic`, or `None` when no pattern matches the whole name.
    pub fn target(&self, topic: &str) -> Option<Target> {
        let route = self
            .by_priority
            .iter()
            .copied()
            .find(|&i| self.routes[i].matches(topic))?;
        let r = &self.routes[route];
        Some(Target {
            route,
            data_source: if r.use_topic_as_data_source {
                topic.to_string()
            } else {
                r.config_name.clone()
            },
        })
    }

    /// Whether any route claims `topic` (the subscription filter).
    pub fn claims(&self, topic: &str) -> bool {
        self.routes.iter().any(|r| r.matches(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, pattern: &str, priority: i64, use_topic: bool) -> TopicRoute {
        TopicRoute::new(name, pattern, priority, use_topic).unwrap()
    }

    #[test]
    fn the_pattern_must_match_the_whole_topic() {
        let m = TopicMapper::new(vec![route("twitter", "twitter", 1, false)]);
        assert!(m.claims("twitter"));
        assert!(!m.claims("twitter2"), "a prefix match is not enough");
        assert!(!m.claims("my-twitter"));
        let m = TopicMapper::new(vec![route("w", "wikipedia.*|edits", 1, false)]);
        assert!(m.claims("wikipedia-en") && m.claims("edits"));
        assert!(
            !m.claims("old-edits"),
            "alternation is grouped before anchoring"
        );
    }

    #[test]
    fn the_default_pattern_matches_nothing() {
        let m = TopicMapper::new(vec![route("x", "(?!)", 1, false)]);
        for topic in ["", "x", "anything"] {
            assert!(!m.claims(topic), "{topic}");
        }
    }

    #[test]
    fn highest_priority_wins_and_ties_keep_file_order() {
        let m = TopicMapper::new(vec![
            route("all", ".*", 1, false),
            route("wiki", "wiki.*", 5, false),
            route("wiki2", "wiki.*", 5, false),
        ]);
        assert_eq!(m.target("wikipedia").unwrap().data_source, "wiki");
        assert_eq!(m.target("twitter").unwrap().data_source, "all");
        assert_eq!(m.target("twitter").unwrap().route, 0);
    }

    #[test]
    fn use_topic_as_data_source() {
        let m = TopicMapper::new(vec![route("template", "metrics-.*", 1, true)]);
        assert_eq!(
            m.target("metrics-cpu"),
            Some(Target {
                route: 0,
                data_source: "metrics-cpu".into()
            })
        );
        assert_eq!(m.target("logs"), None);
    }

    #[test]
    fn lookarounds_work_as_in_java() {
        let m = TopicMapper::new(vec![route("x", "(?!internal-).*", 1, false)]);
        assert!(m.claims("events"));
        assert!(!m.claims("internal-offsets"));
    }

    #[test]
    fn a_bad_pattern_names_the_data_source_and_pattern() {
        let e = TopicRoute::new("wiki", "wiki(", 1, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wiki") && e.contains("wiki("), "{e}");
    }
}
