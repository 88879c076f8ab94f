"""RLlib training of the players and the principal (new API stack)."""
