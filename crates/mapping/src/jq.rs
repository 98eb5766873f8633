//! One compiled jq program (jaq), run on JSON bytes.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// A jq program compiled once, run many times (it is `Send + Sync`: one per process).
pub struct Program {
    filter: Filter,
}

impl Program {
    pub fn compile(code: &str) -> Result<Program, String> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| errs.iter().map(|(_, e)| format!("{e:?}")).collect::<Vec<_>>().join("; "))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| errs.iter().map(|(_, e)| format!("{e:?}")).collect::<Vec<_>>().join("; "))?;
        Ok(Program { filter })
    }

    /// Runs on JSON bytes; the first output, as JSON text.
    pub fn run(&self, input: &[u8]) -> Result<String, String> {
        let input = jaq_json::read::parse_single(input).map_err(|e| e.to_string())?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut out = self.filter.id.run((ctx, input)).map(unwrap_valr);
        match out.next() {
            Some(Ok(v)) => Ok(v.to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("no output".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_pass_through_exactly() {
        let p = Program::compile(r#"{a: .a, b: (.b | tonumber), c: .c}"#).unwrap();
        let out = p.run(br#"{"a": 19.990, "b": "0.10000000000000000001", "c": "12.30"}"#).unwrap();
        assert_eq!(out, r#"{"a":19.990,"b":0.10000000000000000001,"c":"12.30"}"#);
    }
}
