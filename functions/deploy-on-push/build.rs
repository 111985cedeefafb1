//! Links the function as a position-dependent executable (`-no-pie`): the linker then
//! applies the ~50,000-70,000 relative relocations of a PIE build itself, so the kernel
//! maps the binary with none left to patch at start (fewer pages touched and copied).
//! Measured with `greenlight bench` and callgrind: README, "Benchmarks". Every
//! function and the benchmark's floor are linked the same way.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
