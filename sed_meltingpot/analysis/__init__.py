"""Reading what runs did: learning curves (plotting.py), videos of the Lua game
(rendering.py), and the lever analysis (lever.py, its twin episodes lever_play.py)."""
