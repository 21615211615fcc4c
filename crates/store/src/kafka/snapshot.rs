//! Reading the Kafka event topic from its start to the end it has when opened ([`TopicSnapshot`]), with a
//! consumer that joins no group and commits nothing, so production processors are unaffected.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::log::{LogReader, Logged, decode_record};
use crate::{Error, KafkaConfig, Result};

/// The event topic of a deployment as it was when the snapshot was opened.
pub struct TopicSnapshot {
    consumer: BaseConsumer,
    /// Partitions not read to their end yet, with the end (the high watermark when opened).
    ends: BTreeMap<i32, i64>,
}

impl std::fmt::Debug for TopicSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSnapshot")
            .field("ends", &self.ends)
            .finish_non_exhaustive()
    }
}

impl TopicSnapshot {
    /// Assigns every partition of `config`'s event topic from its low watermark.
    pub fn open(config: &KafkaConfig) -> Result<Self> {
        let mut client = rdkafka::ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", "interlude-replay-never-commits")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        let consumer: BaseConsumer = client.create()?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(&config.topic), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut ends = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            let (low, high) = consumer.fetch_watermarks(&config.topic, *p, timeout)?;
            if high > low {
                ends.insert(*p, high);
                assignment.add_partition_offset(&config.topic, *p, Offset::Offset(low))?;
            }
        }
        consumer.assign(&assignment)?;
        Ok(TopicSnapshot { consumer, ends })
    }
}

impl LogReader for TopicSnapshot {
    /// Records in partition order within each partition; an undecodable message is returned with the
    /// decoder's reason (another producer's bytes: the caller decides).
    fn read(&mut self, max: usize) -> Result<Vec<Logged>> {
        let mut out = Vec::new();
        let mut idle = 0;
        while !self.ends.is_empty() && out.len() < max {
            let Some(message) = self.consumer.poll(Duration::from_millis(500)) else {
                idle += 1;
                if idle > 60 {
                    return Err(Error::Refused(format!(
                        "kafka: partitions {:?} stopped short of their end",
                        self.ends.keys().collect::<Vec<_>>()
                    )));
                }
                continue;
            };
            idle = 0;
            let m = message?;
            let (p, offset) = (m.partition(), m.offset());
            if let Some(payload) = m.payload() {
                out.push((offset, decode_record(payload)));
            }
            if self.ends.get(&p).is_some_and(|end| offset + 1 >= *end) {
                self.ends.remove(&p);
            }
        }
        Ok(out)
    }
}
