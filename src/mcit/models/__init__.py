"""Vision-language models: loading, trainable parts, collation and generation."""
