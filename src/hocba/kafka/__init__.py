"""Kafka I/O: the embedded broker, topics, producing, dead letters and lag."""
