//! PyO3 adapter for the xqdecl hot loop. The plain-Rust core lives in sibling
//! modules; this file only converts between Python and Rust values.
use pyo3::prelude::*;

#[pymodule]
fn _xqdecl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
