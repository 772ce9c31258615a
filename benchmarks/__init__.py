"""The lab: what measures the project and renders its documents. Run its tools as
``python -m benchmarks.NAME``; it imports ``helpers``, never the other way round."""
