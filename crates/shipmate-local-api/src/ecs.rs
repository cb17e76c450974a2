//! ECS request and response types.
