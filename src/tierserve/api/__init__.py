"""OpenAI-compatible protocol models and the HTTP-free chat service below the gateway."""
