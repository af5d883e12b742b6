"""Downstream machine-perception models the project trains and ships: a digit/clothing classifier and a
face embedder. The evaluation tasks score codecs with them; the task-aware loss trains against them."""
