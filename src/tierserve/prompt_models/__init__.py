"""Prompt models: the sentence encoder and what reads its embeddings of a prompt.

The task classifier, the question-kind classifier and the start routers all look at the same
embedding of the part of a prompt that differs. The policy core only sees them through
protocols (:class:`~tierserve.policy.classify.TaskPredictor`,
:class:`~tierserve.policy.start_router.PromptEmbedder`), so it never loads an encoder.
"""
