--[[ Components of the apple_picking substrate (sed-meltingpot).

Each component does one job:
  * `DensityRegrowth` (apple): regrowth by the number of live apples nearby.
  * `Harvestable` (apple): eating an apple rewards the eater and tells its
    `ApplesEatenObservation`.
  * `ApplesEatenObservation` (avatar): `<i>.APPLES_EATEN`, apples eaten by
    player i this step.
  * `NearbyPlayersObservation` (avatar): `<i>.NEARBY`, which other players'
    avatars lie inside player i's view window this step.
  * `NearbyPlayersTracker` (scene): computes `NEARBY` for all players at once.
  * `ZappedObservation` (avatar): `<i>.ZAPPED`, 1 while player i is out of
    play after being zapped.
  * `AppleCountObservation` (scene): `WORLD.NUM_APPLES`, live apples on the map.
  * `AppleMapObservation` (scene, debug only): `WORLD.APPLES`, live apples per
    cell, for tests that compare the JAX twin with this level.
  * `ZapStateObservation` (avatar, debug only): `<i>.ZAP_TIMER` and
    `<i>.WAIT_FRAMES`, the zapper's cooldown and the frames spent in the
    current state, which the twin needs to start from this level's state.
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
state changes instead of querying the grid on every step. Whether the apple
waits is cached the same way, so that `update`, called on every apple every
step, returns at once for a live apple without asking the engine its state.
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
  self._waiting = false
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
  self._waiting = self.gameObject:getState() == self._config.waitState
end

function DensityRegrowth:onStateChange(oldState)
  if self._neighbours == nil then
    return  -- Before postStart: counts are computed there.
  end
  local newState = self.gameObject:getState()
  self._waiting = newState == self._config.waitState
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
  if not self._waiting then
    return  -- Live, or before postStart.
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


--[[ Scene: which avatars lie inside each avatar's partial view window, for
all players at once.

Row i (a DoubleTensor of length numPlayers) has 1 at j when player j's avatar
is on `layer` (alive) inside player i's view window (the same window its RGB
shows, Melting Pot's `Avatar:queryPartialObservationWindow`), 0 elsewhere and
at i itself; a zapped player's row is all 0. Computing every row from the n
avatar positions costs far less than n grid window queries (each building a
table of game objects), and the rows are computed only when a `NEARBY`
observation is first read after a step (kept until the next step begins).
]]
local NearbyPlayersTracker = class.Class(component.Component)

function NearbyPlayersTracker:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('NearbyPlayersTracker')},
      -- The layer the live avatars are on.
      {'layer', args.default('upperPhysical'), args.stringType},
  })
  NearbyPlayersTracker.Base.__init__(self, kwargs)
  self._config.layer = kwargs.layer
end

function NearbyPlayersTracker:reset()
  self._rows = nil
end

function NearbyPlayersTracker:postStart()
  self._rows = nil  -- The avatars have just been placed.
end

function NearbyPlayersTracker:preUpdate()
  self._rows = nil  -- Avatars may move, turn, be zapped or respawn this step.
end

-- An absolute offset from one relative to an avatar facing N, E, S or W; the
-- relative offset is (right, backward), as in Melting Pot's view windows.
local ABSOLUTE_FROM_RELATIVE = {
    N = function(right, backward) return right, backward end,
    E = function(right, backward) return -backward, right end,
    S = function(right, backward) return -right, -backward end,
    W = function(right, backward) return backward, -right end,
}

function NearbyPlayersTracker:_computeRows(grid)
  local simulation = self.gameObject.simulation
  local numPlayers = simulation:getNumPlayers()
  local layer = self._config.layer
  -- One engine call per avatar: its position and orientation.
  local transforms = {}
  for i = 1, numPlayers do
    local piece = simulation:getAvatarPieceFromIndex(i)
    if grid:layer(piece) == layer then
      transforms[i] = grid:transform(piece)
    end
  end
  local rows = {}
  for i = 1, numPlayers do
    local row = tensor.DoubleTensor(numPlayers):fill(0)
    local avatar = simulation:getAvatarFromIndex(i):getComponent('Avatar')
    local own = transforms[i]
    if own ~= nil and avatar:isAlive() then
      -- The window's corners as `Avatar:queryPartialObservationWindow` derives
      -- them from the avatar's view configuration: (-left, backward) and
      -- (right, -forward) relative to the avatar.
      local view = avatar._config.view
      local toAbsolute = ABSOLUTE_FROM_RELATIVE[own.orientation]
      assert(toAbsolute, 'NearbyPlayersTracker: unknown orientation')
      local dx1, dy1 = toAbsolute(-view.left, view.backward)
      local dx2, dy2 = toAbsolute(view.right, -view.forward)
      local x, y = own.pos[1], own.pos[2]
      local xMin, xMax = x + math.min(dx1, dx2), x + math.max(dx1, dx2)
      local yMin, yMax = y + math.min(dy1, dy2), y + math.max(dy1, dy2)
      for j = 1, numPlayers do
        local other = transforms[j]
        if j ~= i and other ~= nil then
          local xj, yj = other.pos[1], other.pos[2]
          if xj >= xMin and xj <= xMax and yj >= yMin and yj <= yMax then
            row(j):val(1)
          end
        end
      end
    end
    rows[i] = row
  end
  self._rows = rows
end

function NearbyPlayersTracker:getRow(grid, index)
  if self._rows == nil then
    self:_computeRows(grid)
  end
  return self._rows[index]
end


--[[ `<i>.NEARBY`: row i of the scene's `NearbyPlayersTracker`, i.e. 1 at j
when player j's avatar lies inside player i's partial view window, 0 elsewhere
and at i itself. Zapped players are off the map and so never nearby; a zapped
player sees no one.
]]
local NearbyPlayersObservation = class.Class(component.Component)

function NearbyPlayersObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('NearbyPlayersObservation')},
      -- The name of the scene component that computes the rows.
      {'tracker', args.default('NearbyPlayersTracker'), args.stringType},
  })
  NearbyPlayersObservation.Base.__init__(self, kwargs)
  self._config.tracker = kwargs.tracker
end

function NearbyPlayersObservation:addObservations(tileSet, world, observations)
  local index = self.gameObject:getComponent('Avatar'):getIndex()
  local simulation = self.gameObject.simulation
  observations[#observations + 1] = {
      name = tostring(index) .. '.NEARBY',
      type = 'tensor.DoubleTensor',
      shape = {simulation:getNumPlayers()},
      func = function(grid)
        local scene = simulation:getSceneObject()
        assert(scene:hasComponent(self._config.tracker),
               'NearbyPlayersObservation: the scene has no ' ..
               self._config.tracker .. ' component')
        return scene:getComponent(self._config.tracker):getRow(grid, index)
      end
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


--[[ `WORLD.APPLES` (debug only): an int32 tensor of shape (height, width),
1 where a live apple is, 0 elsewhere. Lets tests read the whole apple field,
which no other observation shows exactly.
]]
local AppleMapObservation = class.Class(component.Component)

function AppleMapObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('AppleMapObservation')},
      {'height', args.positive},
      {'width', args.positive},
      -- The layer and state of a live apple.
      {'layer', args.default('lowerPhysical'), args.stringType},
      {'liveState', args.default('apple'), args.stringType},
  })
  AppleMapObservation.Base.__init__(self, kwargs)
  self._config.height = kwargs.height
  self._config.width = kwargs.width
  self._config.layer = kwargs.layer
  self._config.liveState = kwargs.liveState
end

function AppleMapObservation:_appleMap(grid)
  local result = tensor.Int32Tensor(self._config.height, self._config.width):fill(0)
  local simulation = self.gameObject.simulation
  local pieces = grid:queryRectangle(
      self._config.layer, {0, 0}, {self._config.width - 1, self._config.height - 1})
  for piece, position in pairs(pieces) do
    local object = simulation:getGameObjectFromPiece(piece)
    if object and object:getState() == self._config.liveState then
      result(position[2] + 1, position[1] + 1):val(1)
    end
  end
  return result
end

function AppleMapObservation:addObservations(tileSet, world, observations)
  observations[#observations + 1] = {
      name = 'WORLD.APPLES',
      type = 'tensor.Int32Tensor',
      shape = {self._config.height, self._config.width},
      func = function(grid) return self:_appleMap(grid) end
  }
end


--[[ `<i>.ZAP_TIMER` and `<i>.WAIT_FRAMES` (debug only): the Zapper's cooldown
timer (0 = ready) and the number of frames the avatar has spent in its current
state (the engine's count that `framesTillRespawn` is compared with).
]]
local ZapStateObservation = class.Class(component.Component)

function ZapStateObservation:__init__(kwargs)
  kwargs = args.parse(kwargs, {
      {'name', args.default('ZapStateObservation')},
  })
  ZapStateObservation.Base.__init__(self, kwargs)
end

function ZapStateObservation:addObservations(tileSet, world, observations)
  local avatar = self.gameObject:getComponent('Avatar')
  local index = tostring(avatar:getIndex())
  observations[#observations + 1] = {
      name = index .. '.ZAP_TIMER',
      type = 'Doubles',
      shape = {},
      func = function(grid)
        return self.gameObject:getComponent('Zapper')._coolingTimer
      end
  }
  observations[#observations + 1] = {
      name = index .. '.WAIT_FRAMES',
      type = 'Doubles',
      shape = {},
      func = function(grid)
        return grid:frames(self.gameObject:getPiece())
      end
  }
end


local allComponents = {
    DensityRegrowth = DensityRegrowth,
    Harvestable = Harvestable,
    ApplesEatenObservation = ApplesEatenObservation,
    NearbyPlayersTracker = NearbyPlayersTracker,
    NearbyPlayersObservation = NearbyPlayersObservation,
    ZappedObservation = ZappedObservation,
    AppleCountObservation = AppleCountObservation,
    AppleMapObservation = AppleMapObservation,
    ZapStateObservation = ZapStateObservation,
}

component_registry.registerAllComponents(allComponents)

return allComponents
