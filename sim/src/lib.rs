//! ferry-sim: throwaway servers, the demo data generator, and (later) the fault proxy and scenario runner.

pub mod datagen;
pub mod instance;
pub mod workload;

pub use instance::{
    docker_image, docker_image_usable, find_binary, Backend, Instance, InstanceOptions,
};
