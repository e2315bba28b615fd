"""Pure stages: batch in, (accepted, rejected) out. No Kafka, ClickHouse or Faust here."""
