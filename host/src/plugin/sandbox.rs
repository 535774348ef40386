//! The bounds of one plugin call beyond fuel: the memory of all its memories together, the
//! number of instances, tables and memories a component may create, the size of its tables,
//! and a wall-clock deadline that also covers the time spent in host calls (fuel counts only
//! the plugin's own instructions).

use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter};

/// How often the engine's epoch advances: the granularity of the wall-clock deadline.
pub(super) const TICK: Duration = Duration::from_millis(100);

/// The text of the error that stops a call at its memory limit (see `trap_reason`).
pub(super) const OUT_OF_MEMORY: &str = "copa-host: plugin memory limit reached";

/// A component is a handful of core instances (the plugin, WASI adapters, shims) with one or two
/// memories and a few tables; these leave room for that and nothing like a flood of them.
const MAX_INSTANCES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;
/// All tables together.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Counts what a call's store grows, against one budget for all its memories and one for all
/// its tables' elements.
pub(super) struct CallLimiter {
    memory_budget: usize,
    memory: Tally,
    table_elements: Tally,
}

/// What all memories (or tables) hold, and what they held before the grow in progress, which a
/// failed grow goes back to.
#[derive(Default)]
struct Tally {
    used: usize,
    before_grow: Option<usize>,
}

impl Tally {
    /// Counts a grow from `current` to `desired` of one of them, if it stays within `budget`.
    fn grow(&mut self, current: usize, desired: usize, budget: usize) -> bool {
        let used = self.used - current.min(self.used) + desired;
        if used > budget {
            return false;
        }
        self.before_grow = Some(self.used);
        self.used = used;
        true
    }

    fn grow_failed(&mut self) {
        if let Some(before) = self.before_grow.take() {
            self.used = before;
        }
    }
}

impl CallLimiter {
    pub(super) fn new(memory_budget: usize) -> Self {
        CallLimiter {
            memory_budget,
            memory: Tally::default(),
            table_elements: Tally::default(),
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.memory.grow(current, desired, self.memory_budget) {
            // An error, not `false`: the plugin stops here instead of trying to carry on
            // without the memory it asked for.
            return Err(wasmtime::Error::msg(OUT_OF_MEMORY));
        }
        Ok(true)
    }

    /// The grow was allowed here but failed later (the memory's own maximum, the machine):
    /// the budget gets it back, and the plugin stops as at the limit.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.grow_failed();
        Err(wasmtime::Error::msg(OUT_OF_MEMORY))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self
            .table_elements
            .grow(current, desired, MAX_TABLE_ELEMENTS))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_elements.grow_failed();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Advances `engine`'s epoch every [`TICK`] for as long as the engine lives, so that a call's
/// epoch deadline is a wall-clock one.
pub(super) fn start_ticking(engine: &Engine) {
    let engine = engine.weak();
    let ticker = std::thread::Builder::new()
        .name("copa-host-plugin-clock".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        });
    if let Err(e) = ticker {
        // Without the clock a call has no deadline; fuel still bounds its own work.
        tracing::warn!("cannot start the plugin clock: {e}");
    }
}

/// The deadline of a call of `budget` in epoch ticks (at least one).
pub(super) fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / TICK.as_millis()).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_memories_share_one_budget() {
        let mut limiter = CallLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        // A second memory may not take what the first one holds.
        assert!(limiter.memory_growing(0, 60, None).is_err());
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        // Growing one memory counts only the difference.
        let mut limiter = CallLimiter::new(100);
        assert!(limiter.memory_growing(0, 50, None).unwrap());
        assert!(limiter.memory_growing(50, 100, None).unwrap());
        assert!(limiter.memory_growing(100, 101, None).is_err());
    }

    #[test]
    fn a_failed_grow_gives_its_share_back() {
        let mut limiter = CallLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        let stopped = limiter.memory_grow_failed(wasmtime::Error::msg("no memory"));
        assert!(stopped.is_err(), "a failed grow stops the plugin");
        assert!(limiter.memory_growing(0, 100, None).unwrap());
    }

    #[test]
    fn tables_share_one_element_budget_and_counts_are_bounded() {
        let mut limiter = CallLimiter::new(0);
        assert!(limiter.table_growing(0, 1000, None).unwrap());
        let over = limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap();
        assert!(!over, "two tables together past the budget");
        let within = limiter.table_growing(0, MAX_TABLE_ELEMENTS - 1000, None);
        assert!(within.unwrap());
        assert!(limiter.instances() < 1000 && limiter.memories() < 100);
    }

    #[test]
    fn a_deadline_is_at_least_one_tick() {
        assert_eq!(ticks(Duration::ZERO), 1);
        assert_eq!(ticks(Duration::from_secs(2)), 20);
    }
}
