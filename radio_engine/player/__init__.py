"""What a player service does: replay listening onto Kafka, send track audio, follow queues."""
