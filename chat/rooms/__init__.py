"""Rooms: a room's audiences and reader state machine, the rooms of this node, joining."""
