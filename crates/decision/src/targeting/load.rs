//! Expressions as the catalog loads them: codes normalised to their standard case, and values the domain
//! constrains (time zones, hours, weekdays, positions, ranges) checked with the path of the mistake.

use super::{Expr, Field, WEEKDAYS};

impl Expr {
    /// The same expression with codes in their normal case (see [`Field::normalise`]), as the catalog
    /// stores it.
    pub fn normalised(&self) -> Expr {
        match self {
            Expr::All(items) => Expr::All(items.iter().map(Expr::normalised).collect()),
            Expr::Any(items) => Expr::Any(items.iter().map(Expr::normalised).collect()),
            Expr::Not(e) => Expr::Not(Box::new(e.normalised())),
            Expr::Is { field, values } => Expr::Is {
                field: *field,
                values: values
                    .iter()
                    .map(|v| field.normalise(v).into_owned())
                    .collect(),
            },
            Expr::Daypart {
                timezone,
                hours,
                weekdays,
            } => Expr::Daypart {
                timezone: timezone.clone(),
                hours: hours.clone(),
                weekdays: weekdays.iter().map(|d| d.to_ascii_lowercase()).collect(),
            },
            other => other.clone(),
        }
    }

    /// Checks values the domain constrains (time zones, hours, weekdays, positions, ranges); the error is the
    /// path below `path` of the first mistake, and why.
    pub fn check(&self, path: &str) -> Result<(), (String, String)> {
        let bad = |p: String, r: String| Err((p, r));
        match self {
            Expr::All(items) | Expr::Any(items) => {
                let kind = if matches!(self, Expr::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (k, e) in items.iter().enumerate() {
                    e.check(&format!("{path}.{kind}[{k}]"))?;
                }
                Ok(())
            }
            Expr::Not(e) => e.check(&format!("{path}.not")),
            Expr::Kv { .. } => Ok(()),
            Expr::Is { field, values } => {
                for (k, v) in values.iter().enumerate() {
                    let ok = match field {
                        Field::Hour => v.parse::<u32>().is_ok_and(|h| h < 24),
                        Field::Weekday => WEEKDAYS.contains(&v.to_ascii_lowercase().as_str()),
                        Field::PodPosition => {
                            ["first", "last"].contains(&v.to_ascii_lowercase().as_str())
                        }
                        Field::BreakDuration => v.parse::<u32>().is_ok(),
                        _ => true,
                    };
                    if !ok {
                        return bad(
                            format!("{path}.is.values[{k}]"),
                            format!("{v:?} is not a valid {field:?} value"),
                        );
                    }
                }
                Ok(())
            }
            Expr::Between { min, max, .. } => {
                if min.is_finite() && max.is_finite() && min <= max {
                    Ok(())
                } else {
                    bad(
                        format!("{path}.between"),
                        "min and max must be numbers with min <= max".into(),
                    )
                }
            }
            Expr::Daypart {
                timezone,
                hours,
                weekdays,
            } => {
                if let Some(tz) = timezone
                    && tz.parse::<chrono_tz::Tz>().is_err()
                {
                    return bad(
                        format!("{path}.daypart.timezone"),
                        format!("unknown time zone {tz:?}"),
                    );
                }
                if let Some(k) = hours.iter().position(|h| *h > 23) {
                    return bad(
                        format!("{path}.daypart.hours[{k}]"),
                        "must be 0 to 23".into(),
                    );
                }
                if let Some(k) = weekdays
                    .iter()
                    .position(|d| !WEEKDAYS.contains(&d.to_ascii_lowercase().as_str()))
                {
                    return bad(
                        format!("{path}.daypart.weekdays[{k}]"),
                        "must be mon, tue, wed, thu, fri, sat or sun".into(),
                    );
                }
                Ok(())
            }
        }
    }
}
