//! Email: for now only the address type (the rest lives on main).

pub mod address;
