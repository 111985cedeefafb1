//! The scenarios, one file each.

mod approval;
mod broken;
mod burst;
mod degrading;
mod healthy;
mod promotion;
mod slow;
