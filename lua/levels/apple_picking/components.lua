--[[ Components of the apple_picking substrate (sed-meltingpot).

Each component does one job:
  * `DensityRegrowth` (apple): regrowth by the number of live apples nearby.
  * `Harvestable` (apple): eating an apple rewards the eater and tells its
    `ApplesEatenObservation`.
  * `ApplesEatenObservation` (avatar): `<i>.APPLES_EATEN`, apples eaten by
    player i this step.
  * `NearbyPlayersObservation` (avatar): `<i>.NEARBY`, which other players'
    avatars lie inside player i's view window this step.
  * `ZappedObservation` (avatar): `<i>.ZAPPED`, 1 while player i is out of
    play after being zapped.
  * `AppleCountObservation` (scene): `WORLD.NUM_APPLES`, live apples on the map.
Everything else (avatars, zapper, walls, appearance) is Melting Pot's own.
]]

local args = require 'common.args'
local class = require 'common.class'
local events = require 'system.events'
local random = require 'system.random'
local tensor = require 'system.tensor'

local meltingpot = 'meltingpot.lua.modules.'
local component = require(meltingpot .. 'component')
local component_registry = require(meltingpot .. 'component_registry')


--[[ An eaten apple regrows with a per-step probability that depends on how
many live apples lie within `radius` (L2 disc, the apple's own cell excluded).

`probabilities[k + 1]` is the probability with k live neighbours; counts above
the table's end use its last entry. Apples never move, so each apple finds its
neighbours once (postStart) and live-neighbour counts are kept up to date on
state changes instead of querying the grid on every step.
]]
local DensityRegrowth = class.Class(component.Component)

function DensityRegrowth:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('DensityRegrowth')},
      {'liveState', args.stringType},
      {'waitState', args.stringType},
      {'radius', args.ge(0)},
      {'probabilities', args.tableType},
      -- Layers of the live and the wait state, searched for neighbours.
      {'layers', args.default({'lowerPhysical', 'logic'}), args.tableType},
  })
  DensityRegrowth.Base.__init__(self, kwargs)
  self._config.liveState = kwargs.liveState
  self._config.waitState = kwargs.waitState
  self._config.radius = kwargs.radius
  self._config.probabilities = kwargs.probabilities
  self._config.layers = kwargs.layers
  for _, p in ipairs(kwargs.probabilities) do
    assert(p >= 0 and p <= 1, 'DensityRegrowth: probability outside [0, 1]')
  end
  assert(#kwargs.probabilities > 0, 'DensityRegrowth: no probabilities')
end

function DensityRegrowth:reset()
  self._neighbours = nil
  self._numLiveNeighbours = 0
end

function DensityRegrowth:postStart()
  local transform = self.gameObject:getComponent('Transform')
  self._neighbours = {}
  self._numLiveNeighbours = 0
  for _, layer in ipairs(self._config.layers) do
    for _, object in ipairs(transform:queryDisc(layer, self._config.radius)) do
      if object ~= self.gameObject and object:hasComponent(self.name) then
        table.insert(self._neighbours, object:getComponent(self.name))
        if object:getState() == self._config.liveState then
          self._numLiveNeighbours = self._numLiveNeighbours + 1
        end
      end
    end
  end
end

function DensityRegrowth:onStateChange(oldState)
  if self._neighbours == nil then
    return  -- Before postStart: counts are computed there.
  end
  local newState = self.gameObject:getState()
  local live = self._config.liveState
  local delta = 0
  if newState == live and oldState ~= live then
    delta = 1
  elseif oldState == live and newState ~= live then
    delta = -1
  end
  if delta ~= 0 then
    for _, neighbour in ipairs(self._neighbours) do
      neighbour._numLiveNeighbours = neighbour._numLiveNeighbours + delta
    end
  end
end

function DensityRegrowth:getNumLiveNeighbours()
  return self._numLiveNeighbours
end

function DensityRegrowth:update()
  if self._neighbours == nil or
      self.gameObject:getState() ~= self._config.waitState then
    return
  end
  local probabilities = self._config.probabilities
  local p = probabilities[math.min(self._numLiveNeighbours + 1, #probabilities)]
  if p > 0 and random:uniformReal(0, 1) < p then
    self.gameObject:setState(self._config.liveState)
  end
end


--[[ A live apple is eaten by the avatar that steps onto it: the eater gets
`reward`, its `ApplesEatenObservation` counts the apple, and the apple turns
to its wait state.
]]
local Harvestable = class.Class(component.Component)

function Harvestable:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('Harvestable')},
      {'liveState', args.stringType},
      {'waitState', args.stringType},
      {'reward', args.default(1.0), args.numberType},
  })
  Harvestable.Base.__init__(self, kwargs)
  self._config.liveState = kwargs.liveState
  self._config.waitState = kwargs.waitState
  self._config.reward = kwargs.reward
end

function Harvestable:onEnter(enteringGameObject, contactName)
  if contactName ~= 'avatar' or
      self.gameObject:getState() ~= self._config.liveState then
    return
  end
  local avatar = enteringGameObject:getComponent('Avatar')
  avatar:addReward(self._config.reward)
  if enteringGameObject:hasComponent('ApplesEatenObservation') then
    enteringGameObject:getComponent('ApplesEatenObservation'):addApple()
  end
  events:add('apple_eaten', 'dict', 'player_index', avatar:getIndex())
  self.gameObject:setState(self._config.waitState)
end


--[[ `<i>.APPLES_EATEN`: apples player i ate this step (reset each step). ]]
local ApplesEatenObservation = class.Class(component.Component)

function ApplesEatenObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('ApplesEatenObservation')},
  })
  ApplesEatenObservation.Base.__init__(self, kwargs)
end

function ApplesEatenObservation:reset()
  self._applesThisStep = 0
end

function ApplesEatenObservation:preUpdate()
  -- preUpdate runs before any movement of the step, so apples eaten during
  -- the step are counted in the observation read after it.
  self._applesThisStep = 0
end

function ApplesEatenObservation:addApple()
  self._applesThisStep = self._applesThisStep + 1
end

function ApplesEatenObservation:addObservations(tileSet, world, observations)
  local index = self.gameObject:getComponent('Avatar'):getIndex()
  observations[#observations + 1] = {
      name = tostring(index) .. '.APPLES_EATEN',
      type = 'Doubles',
      shape = {},
      func = function(grid) return self._applesThisStep end
  }
end


--[[ `<i>.NEARBY`: a vector of length numPlayers, 1 at j when player j's
avatar lies inside player i's partial view window (the same window its RGB
shows), 0 elsewhere and at i itself. Zapped players are off the map and so
never nearby; a zapped player sees no one.
]]
local NearbyPlayersObservation = class.Class(component.Component)

function NearbyPlayersObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('NearbyPlayersObservation')},
      -- The layer the live avatars are on.
      {'layer', args.default('upperPhysical'), args.stringType},
  })
  NearbyPlayersObservation.Base.__init__(self, kwargs)
  self._config.layer = kwargs.layer
end

function NearbyPlayersObservation:_nearby()
  local numPlayers = self.gameObject.simulation:getNumPlayers()
  local result = tensor.DoubleTensor(numPlayers):fill(0)
  local avatar = self.gameObject:getComponent('Avatar')
  if not avatar:isAlive() then
    return result
  end
  local ownIndex = avatar:getIndex()
  for _, object in ipairs(
      avatar:queryPartialObservationWindow(self._config.layer)) do
    if object:hasComponent('Avatar') then
      local index = object:getComponent('Avatar'):getIndex()
      if index ~= ownIndex then
        result(index):val(1)
      end
    end
  end
  return result
end

function NearbyPlayersObservation:addObservations(tileSet, world, observations)
  local index = self.gameObject:getComponent('Avatar'):getIndex()
  observations[#observations + 1] = {
      name = tostring(index) .. '.NEARBY',
      type = 'tensor.DoubleTensor',
      shape = {self.gameObject.simulation:getNumPlayers()},
      func = function(grid) return self:_nearby() end
  }
end


--[[ `<i>.ZAPPED`: 1 while player i is out of play after being zapped. ]]
local ZappedObservation = class.Class(component.Component)

function ZappedObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('ZappedObservation')},
  })
  ZappedObservation.Base.__init__(self, kwargs)
end

function ZappedObservation:addObservations(tileSet, world, observations)
  local avatar = self.gameObject:getComponent('Avatar')
  observations[#observations + 1] = {
      name = tostring(avatar:getIndex()) .. '.ZAPPED',
      type = 'Doubles',
      shape = {},
      func = function(grid)
        if avatar:isAlive() then return 0 else return 1 end
      end
  }
end


--[[ `WORLD.NUM_APPLES`: the number of live apples on the map. ]]
local AppleCountObservation = class.Class(component.Component)

function AppleCountObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('AppleCountObservation')},
      -- The group that the live apple state belongs to.
      {'group', args.default('apples'), args.stringType},
  })
  AppleCountObservation.Base.__init__(self, kwargs)
  self._config.group = kwargs.group
end

function AppleCountObservation:addObservations(tileSet, world, observations)
  observations[#observations + 1] = {
      name = 'WORLD.NUM_APPLES',
      type = 'Doubles',
      shape = {},
      func = function(grid)
        return self.gameObject.simulation:getGroupCount(self._config.group)
      end
  }
end


local allComponents = {
    DensityRegrowth = DensityRegrowth,
    Harvestable = Harvestable,
    ApplesEatenObservation = ApplesEatenObservation,
    NearbyPlayersObservation = NearbyPlayersObservation,
    ZappedObservation = ZappedObservation,
    AppleCountObservation = AppleCountObservation,
}

component_registry.registerAllComponents(allComponents)

return allComponents
