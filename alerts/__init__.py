"""Alert delivery: consumes the `alerts` topic and hands each alert to its channels."""
