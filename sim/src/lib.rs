//! ferry-sim: throwaway servers, the demo data generator, the fault proxy, the scenario runner and the model
//! simulator.

pub mod datagen;
pub mod instance;
pub mod model;
pub mod proxy;
pub mod runner;
pub mod scenario;
pub mod workload;

pub use instance::{
    docker_image, docker_image_usable, find_binary, Backend, Instance, InstanceOptions,
};
