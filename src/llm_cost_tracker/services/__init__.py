"""Long-running processes built from the pipeline's stages (the Kafka receiver and consumer)."""
