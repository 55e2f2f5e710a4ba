//! CLI output: pretty JSON, or a table of the first list of objects in the response.

use anyhow::{Result, bail};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Table,
}

impl std::str::FromStr for Output {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Output::Json),
            "table" => Ok(Output::Table),
            other => bail!("--output {other:?}: use json or table"),
        }
    }
}

pub fn print(v: &Value, out: Output) -> Result<()> {
    match out {
        Output::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Output::Table => print!("{}", table(v)),
    }
    Ok(())
}

/// The first array of objects found (depth-first), as aligned columns of its scalar fields; a
/// response without one is shown as `Key  value` lines.
pub fn table(v: &Value) -> String {
    let rows = first_object_list(v);
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let Some(rows) = rows else {
        let mut s = String::new();
        if let Value::Object(m) = v {
            let w = m.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in m {
                if let Some(val) = scalar(v) {
                    s.push_str(&format!("{k:w$}  {val}\n"));
                }
            }
        }
        return s;
    };
    let mut cols: Vec<String> = vec![];
    for r in rows {
        if let Value::Object(m) = r {
            for (k, v) in m {
                if scalar(v).is_some() && !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| cols.iter().map(|c| r.get(c).and_then(scalar).unwrap_or_default()).collect()).collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |vals: &[String]| {
        vals.iter().zip(&widths).map(|(v, w)| format!("{v:w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
            + "\n"
    };
    let mut s = line(&cols);
    s.push_str(&line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()));
    for r in &cells {
        s.push_str(&line(r));
    }
    s
}

fn first_object_list(v: &Value) -> Option<&Vec<Value>> {
    match v {
        Value::Array(a) if a.iter().any(Value::is_object) => Some(a),
        Value::Array(a) => a.iter().find_map(first_object_list),
        Value::Object(m) => m.values().find_map(first_object_list),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabulates_the_first_list() {
        let v = json!({"RequestId": "R", "Regions": {"Region": [{"RegionId": "local-1", "Status": "available", "Nested": {}}]}});
        assert_eq!(table(&v), "RegionId  Status\n--------  ---------\nlocal-1   available\n");
        assert_eq!(table(&json!({"RequestId": "R", "N": 3})), "RequestId  R\nN          3\n");
    }
}
