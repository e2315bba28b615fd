"""Kafka I/O: the embedded broker, topics, producing, dead letters and lag."""

# The tools' requests (metadata, offsets, group descriptions, topic creation) are answered in
# milliseconds. A listener that is not Kafka (a wrong port) never answers, and aiokafka's
# default of 40 s would hold an operator, or a `lag --max-lag` probe, that long without a word.
# The producers keep the default: a large batch on a busy cluster may take longer.
REQUEST_TIMEOUT_MS = 10_000
