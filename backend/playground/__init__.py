"""Trying a finished run: chat (streamed, side by side with the base), classify, batch predictions.

- chat.py     load a chat run or a base model, stream replies, side by side
- predict.py  a classifier's probabilities for one input; a whole split scored, with a CSV
- cache.py    the models loaded for the playground, kept up to a memory bound (CACHE)
"""

from backend.playground.cache import CACHE

__all__ = ["CACHE"]
