--[[ Entry point of the apple_picking substrate (sed-meltingpot).

The Apple Picking game of "Position: Social Environment Design" (ICML 2024):
Commons Harvest with a fixed episode length and the per-player signals that
the Python tax and voting layer reads (apples eaten, players in view, zapped).
The game is described by the Python config in `substrates/apple_picking.py`;
this file only wires Melting Pot's simulation to the components it uses.
]]

local class = require 'common.class'
local random = require 'system.random'

local meltingpot = 'meltingpot.lua.modules.'
local api_factory = require(meltingpot .. 'api_factory')
local simulation = require(meltingpot .. 'base_simulation')

-- Registers Melting Pot's components (StateManager, Avatar, Zapper, ...).
local component_library = require(meltingpot .. 'component_library')
local avatar_library = require(meltingpot .. 'avatar_library')
-- Registers this game's own components.
local components = require 'components'


--[[ Melting Pot's simulation with avatars spawned in player-index order.

`BaseSimulation:_avatarStart` hands the sampled spawn points to the avatars in
`pairs` order over a table keyed by object-id strings, and that order changes
from one Lua state to the next. The points drawn are the same for a seed but
which player gets which one is not, so a fixed seed did not fix the episode.
This copy differs only in walking the avatars by index.
]]
local Simulation = class.Class(simulation.BaseSimulation)

function Simulation:_avatarStart(grid)
  local avatars = {}
  for _, avatarObject in pairs(self._variables.avatarObjects) do
    avatars[#avatars + 1] = avatarObject
  end
  table.sort(avatars, function(a, b)
    return a:getComponent('Avatar'):getIndex() < b:getComponent('Avatar'):getIndex()
  end)

  -- How many avatars start in each spawn group (cached: groups may be dynamic).
  local spawnGroups = {}
  local numPerGroup = {}
  local groupOrder = {}
  for i, avatarObject in ipairs(avatars) do
    local spawnGroup = avatarObject:getComponent('Avatar'):getSpawnGroup()
    spawnGroups[i] = spawnGroup
    if numPerGroup[spawnGroup] == nil then
      numPerGroup[spawnGroup] = 0
      groupOrder[#groupOrder + 1] = spawnGroup
    end
    numPerGroup[spawnGroup] = numPerGroup[spawnGroup] + 1
  end

  -- Sample the spawn points of each group without replacement, the groups in
  -- order of their first avatar so that the random draws are reproducible.
  local pointsByGroup = {}
  local usedByGroup = {}
  for _, spawnGroup in ipairs(groupOrder) do
    pointsByGroup[spawnGroup] = grid:groupShuffledWithCount(
        random, spawnGroup, numPerGroup[spawnGroup])
    assert(#pointsByGroup[spawnGroup] == numPerGroup[spawnGroup],
           'Insufficient spawn points!')
    usedByGroup[spawnGroup] = 0
  end

  for i, avatarObject in ipairs(avatars) do
    local spawnGroup = spawnGroups[i]
    usedByGroup[spawnGroup] = usedByGroup[spawnGroup] + 1
    -- `start` creates the avatar's piece at the point.
    avatarObject:start(grid, pointsByGroup[spawnGroup][usedByGroup[spawnGroup]])
    local avatarPiece = avatarObject:getPiece()
    local avatarIndex = avatarObject:getComponent('Avatar'):getIndex()
    self._variables.avatarPieceToIndex[avatarPiece] = avatarIndex
    self._variables.avatarIndexToPiece[avatarIndex] = avatarPiece
    self._variables.pieceToGameObject[avatarPiece] = avatarObject
  end

  for _, gameObject in pairs(
      self._variables.objectsByFunctionName.postStart) do
    gameObject:postStart(grid)
  end
end


return api_factory.apiFactory{
    Simulation = Simulation,
    settings = {
        spriteSize = 8,
        -- Overridden by the config: the game always lasts exactly this long.
        maxEpisodeLengthFrames = 1000,
        simulation = {},
    }
}
