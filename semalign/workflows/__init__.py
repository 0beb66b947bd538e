"""Layer 5: workflows, one path each for every task.

train, evaluate, predict, embed, inspect, align and export receive a task from
:mod:`semalign.tasks` and never name one.
"""
