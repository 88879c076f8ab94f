--[[ Entry point of the apple_picking substrate (sed-meltingpot).

The Apple Picking game of "Position: Social Environment Design" (ICML 2024):
Commons Harvest with a fixed episode length and the per-player signals that
the Python tax and voting layer reads (apples eaten, players in view, zapped).
The game is described by the Python config in `substrates/apple_picking.py`;
this file only wires Melting Pot's simulation to the components it uses.
]]

local meltingpot = 'meltingpot.lua.modules.'
local api_factory = require(meltingpot .. 'api_factory')
local simulation = require(meltingpot .. 'base_simulation')

-- Registers Melting Pot's components (StateManager, Avatar, Zapper, ...).
local component_library = require(meltingpot .. 'component_library')
local avatar_library = require(meltingpot .. 'avatar_library')
-- Registers this game's own components.
local components = require 'components'

return api_factory.apiFactory{
    Simulation = simulation.BaseSimulation,
    settings = {
        spriteSize = 8,
        -- Overridden by the config: the game always lasts exactly this long.
        maxEpisodeLengthFrames = 1000,
        simulation = {},
    }
}
