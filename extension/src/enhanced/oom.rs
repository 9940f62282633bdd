//! Out-of-memory evidence, three detectors deduplicated per request by the caller: the
//! runtime's `errorType`, max memory used reaching the memory size, and the runtime's own error
//! text in function logs.

/// `platform.runtimeDone.errorType` when Lambda itself saw the OOM.
pub fn is_oom_error_type(error_type: &str) -> bool {
    error_type == "Runtime.OutOfMemory"
}

/// `platform.report`: the sandbox used all of its memory.
pub fn is_memory_exhausted(max_memory_used_mb: f64, memory_size_mb: f64) -> bool {
    memory_size_mb > 0.0 && max_memory_used_mb >= memory_size_mb
}

/// What runtimes print when they run out of memory (the patterns bottlecap's `is_oom_error`
/// matches, plus Rust's allocator abort).
const PATTERNS: &[&str] = &[
    // Go
    "fatal error: runtime: out of memory",
    // Java
    "java.lang.OutOfMemoryError",
    // Node.js
    "JavaScript heap out of memory",
    // Python
    "MemoryError",
    // Ruby
    "failed to allocate memory (NoMemoryError)",
    // .NET
    "System.OutOfMemoryException",
    // Rust
    "memory allocation of",
    // Lambda's own runtime error
    "Runtime.OutOfMemory",
];

/// A function log line that reports an out-of-memory failure.
pub fn is_oom_log(text: &str) -> bool {
    matched_pattern(text).is_some()
}

/// The first pattern `text` contains. No pattern has a character JSON escapes, so this works
/// on a line's raw JSON text as well as on the decoded line.
pub fn matched_pattern(text: &str) -> Option<&'static str> {
    PATTERNS.iter().copied().find(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors() {
        assert!(is_oom_error_type("Runtime.OutOfMemory"));
        assert!(!is_oom_error_type("Runtime.ExitError"));
        assert!(is_memory_exhausted(128.0, 128.0));
        assert!(!is_memory_exhausted(127.0, 128.0));
        assert!(!is_memory_exhausted(0.0, 0.0));
        assert!(is_oom_log(
            "<--- JS stacktrace --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
        ));
        assert!(is_oom_log("memory allocation of 1073741824 bytes failed"));
        assert!(is_oom_log("[ERROR] MemoryError\nTraceback"));
        assert!(!is_oom_log("all good, memory at 50%"));
    }
}
