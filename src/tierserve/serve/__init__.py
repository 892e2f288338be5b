"""Ray Serve deployments (thin): the model server per tier and the OpenAI-compatible gateway."""
