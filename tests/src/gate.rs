//! A channel that holds every delivery until the test opens the gate: a delivery under way for
//! as long as the test needs.

use std::sync::Mutex;

use tickler::async_trait;
use tickler::{Channel, DeliveryError, Message};

pub struct Gate {
    /// One permit lets one delivery through.
    pub open: tokio::sync::Semaphore,
    /// The idempotency keys of the deliveries that reached the gate.
    pub waiting: Mutex<Vec<String>>,
    /// Told each time a delivery reaches the gate.
    pub arrived: tokio::sync::Notify,
}

impl Gate {
    pub fn closed() -> Gate {
        Gate {
            open: tokio::sync::Semaphore::new(0),
            waiting: Mutex::default(),
            arrived: tokio::sync::Notify::new(),
        }
    }
}

#[async_trait]
impl Channel for Gate {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        self.waiting
            .lock()
            .unwrap()
            .push(message.idempotency_key.clone());
        self.arrived.notify_one();
        let permit = self.open.acquire().await.expect("the gate is never closed");
        permit.forget();
        Ok("through the gate".into())
    }
}
