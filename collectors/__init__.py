"""Site agents: sources that read meters, and the publisher that sends readings messages to Kafka."""
