"""The application layer: the ``guienv`` CLI, the training loop, evaluation, reports and scoring."""
