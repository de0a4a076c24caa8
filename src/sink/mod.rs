//! Where events go: every consumer gets its own unbounded queue, so the orchestrator never
//! waits on one, and nothing is dropped.

pub mod journal;

use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::event::Event;

/// Fans each event out to every consumer.
#[derive(Default)]
pub struct Bus {
    consumers: Vec<Sender<Arc<Event>>>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, consumer: Sender<Arc<Event>>) {
        self.consumers.push(consumer);
    }

    pub fn send(&self, event: Arc<Event>) {
        for consumer in &self.consumers {
            // A consumer that stopped (e.g. a closed view) must not stop the deploy.
            let _ = consumer.send(Arc::clone(&event));
        }
    }
}
