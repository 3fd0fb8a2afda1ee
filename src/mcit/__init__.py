"""mcit: multimodal continual instruction tuning.

Train a vision-language model on a stream of instruction tasks, evaluate every task after every
task, and report the accuracy matrix and the continual-learning metrics. Importing the package is
cheap: heavy libraries (torch, transformers) are imported where they are used.
"""

__version__ = "0.1.0"
