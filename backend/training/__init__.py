"""How a run trains, the same for every task: the method (full, LoRA, QLoRA, freeze, gradual) and the
Trainer's settings (optimizer, schedule, precision, early stopping).

- methods.py  which weights train: add_lora, freeze, GradualUnfreezing, prepare
- optim.py    RunConfig -> TrainingArguments, optimizer, stopping callbacks

A task (backend.tasks) builds the model and its data; the worker (backend.runs.worker) puts them together.
These import torch, so nothing is imported here: `from backend.training.methods import prepare`.
"""
