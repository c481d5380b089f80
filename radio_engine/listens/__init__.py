"""The listen path: raw listen records -> listener state and radio queues, one pass per batch."""
