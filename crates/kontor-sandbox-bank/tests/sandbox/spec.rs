//! Loads the standards' OpenAPI files and validates requests and responses against them.
//!
//! OpenAPI 3.0 schemas are not quite JSON Schema, so the documents are converted first:
//! `nullable` becomes a `null` type, boolean `exclusiveMinimum`/`exclusiveMaximum` become
//! numeric, UK `x-namespaced-enum` lists are enforced as `enum`, and a `oneOf` with an empty
//! alternative (`{}` matches everything, so `oneOf` could never pass) is read as `anyOf`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// Which spec document a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    BerlinGroup,
    UkAccounts,
    UkPayments,
}

pub struct Spec {
    pub(crate) doc: Value,
    pub(crate) templates: Vec<(Vec<String>, String)>,
    pub(crate) cache: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

pub struct Specs {
    pub(crate) bg: Spec,
    pub(crate) uk_ais: Spec,
    pub(crate) uk_pis: Spec,
}

fn specs_dir() -> PathBuf {
    match std::env::var_os("KONTOR_SPECS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs"),
    }
}

static SPECS: OnceLock<Option<Specs>> = OnceLock::new();

/// The loaded specs, or `None` (after a loud note on stderr) when the folder is missing.
/// With `KONTOR_REQUIRE_SPECS=1` a missing folder is a failure instead.
pub fn specs() -> Option<&'static Specs> {
    SPECS
        .get_or_init(|| {
            let dir = specs_dir();
            if !dir.join("berlin-group").is_dir() {
                if std::env::var("KONTOR_REQUIRE_SPECS").as_deref() == Ok("1") {
                    panic!("KONTOR_REQUIRE_SPECS=1 but the specs folder {} is missing", dir.display());
                }
                return None;
            }
            Some(Specs {
                bg: Spec::new(load_yaml(&dir.join("berlin-group/psd2-api-1.3.8.yaml"))),
                uk_ais: Spec::new(load_json(&dir.join("uk-open-banking/account-info-openapi-3.1.11.json"))),
                uk_pis: Spec::new(load_json(&dir.join("uk-open-banking/payment-initiation-openapi-3.1.11.json"))),
            })
        })
        .as_ref()
        .or_else(|| {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: the specs folder {} is missing; sandbox conformance tests did not run. \
                 Set KONTOR_SPECS_DIR, or KONTOR_REQUIRE_SPECS=1 to fail instead. ***\n",
                specs_dir().display()
            );
            None
        })
}

fn load_yaml(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// OpenAPI 3.0 schema dialect → JSON Schema 2020-12, applied to the whole document.
fn convert(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(list) = map.remove("x-namespaced-enum") {
                map.insert("enum".into(), list);
            }
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([t, "null"]));
            }
            for (flag, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if let Some(Value::Bool(exclusive)) = map.get(flag).cloned() {
                    map.remove(flag);
                    if exclusive && let Some(b) = map.remove(bound) {
                        map.insert(flag.into(), b);
                    }
                }
            }
            if let Some(Value::Array(options)) = map.get("oneOf")
                && options
                    .iter()
                    .any(|o| o.as_object().is_some_and(Map::is_empty))
                && let Some(options) = map.remove("oneOf")
            {
                map.insert("anyOf".into(), options);
            }
            for v in map.values_mut() {
                convert(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert),
        _ => {}
    }
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

impl Spec {
    fn new(mut doc: Value) -> Self {
        convert(&mut doc);
        let templates = doc["paths"]
            .as_object()
            .map(|p| p.keys().map(|k| (segments(k), k.clone())).collect())
            .unwrap_or_default();
        Spec {
            doc,
            templates,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Follows `$ref`s (local ones only, as both standards use).
    pub(crate) fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(r) = value.get("$ref").and_then(Value::as_str) {
            let pointer = r.trim_start_matches('#');
            match self.doc.pointer(pointer) {
                Some(v) => value = v,
                None => break,
            }
        }
        value
    }

    /// The template matching a concrete path; literal segments beat parameters.
    pub(crate) fn template(&self, path: &str) -> Option<(&str, HashMap<String, String>)> {
        let parts = segments(path);
        let mut best: Option<(usize, &str, HashMap<String, String>)> = None;
        for (tpl, key) in &self.templates {
            if tpl.len() != parts.len() {
                continue;
            }
            let mut params = HashMap::new();
            let mut literal = 0;
            let ok = tpl.iter().zip(&parts).all(|(t, p)| {
                if t.starts_with('{') && t.ends_with('}') {
                    params.insert(
                        t.trim_matches(|c| c == '{' || c == '}').to_string(),
                        p.clone(),
                    );
                    true
                } else {
                    literal += 1;
                    t == p
                }
            });
            if ok && best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, key.as_str(), params));
            }
        }
        best.map(|(_, k, p)| (k, p))
    }

    /// Validates `instance` against the schema at a JSON pointer of the document.
    pub(crate) fn check(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let validator =
            {
                let mut cache = self
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cache
                    .entry(pointer.to_string())
                    .or_insert_with(|| {
                        let mut schema = self.doc.clone();
                        // A URI fragment: the braces of path templates must be percent-encoded.
                        let fragment = pointer
                            .replace('%', "%25")
                            .replace('{', "%7B")
                            .replace('}', "%7D");
                        schema["$ref"] = Value::String(format!("#{fragment}"));
                        let built = jsonschema::options()
                            .should_validate_formats(true)
                            .build(&schema);
                        Arc::new(built.unwrap_or_else(|e| {
                            panic!("schema at {pointer} does not compile: {e}")
                        }))
                    })
                    .clone()
            };
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    pub(crate) fn operation(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(String, HashMap<String, String>), String> {
        let (template, params) = self
            .template(path)
            .ok_or_else(|| format!("no path in the spec matches {path}"))?;
        let pointer = format!(
            "/paths/{}/{}",
            template.replace('~', "~0").replace('/', "~1"),
            method.to_lowercase()
        );
        if self.doc.pointer(&pointer).is_none() {
            return Err(format!(
                "{method} {template} is not an operation of the spec"
            ));
        }
        Ok((pointer, params))
    }

    /// The operation's parameters (path-level and operation-level), resolved.
    pub(crate) fn parameters(&self, op_pointer: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let path_pointer = &op_pointer[..op_pointer.rfind('/').unwrap_or(0)];
        for p in [
            format!("{path_pointer}/parameters"),
            format!("{op_pointer}/parameters"),
        ] {
            if let Some(Value::Array(list)) = self.doc.pointer(&p) {
                out.extend(list.iter().map(|v| self.resolve(v).clone()));
            }
        }
        out
    }

    /// Validates one parameter's text value against its schema (typed as the schema says).
    pub(crate) fn check_param(&self, param: &Value, text: &str) -> Result<(), String> {
        let raw = &param["schema"];
        let schema = self.resolve(raw);
        let kind = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        let instance = match kind {
            "boolean" => match text {
                "true" => json!(true),
                "false" => json!(false),
                _ => json!(text),
            },
            "integer" | "number" => text.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(text)),
            _ => json!(text),
        };
        let result = match raw.get("$ref").and_then(Value::as_str) {
            Some(r) => self.check(r.trim_start_matches('#'), &instance),
            None => {
                let key = format!("inline:{raw}");
                let validator = {
                    let mut cache = self
                        .cache
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    cache
                        .entry(key)
                        .or_insert_with(|| {
                            let built = jsonschema::options()
                                .should_validate_formats(true)
                                .build(raw);
                            Arc::new(built.unwrap_or_else(|e| {
                                panic!("parameter schema {raw} does not compile: {e}")
                            }))
                        })
                        .clone()
                };
                let errors: Vec<String> = validator
                    .iter_errors(&instance)
                    .map(|e| e.to_string())
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join("; "))
                }
            }
        };
        result.map_err(|e| format!("{} `{text}`: {e}", param["name"]))
    }
}
