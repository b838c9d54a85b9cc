//! The operation mix: `name=weight` pairs such as `purchase=70,balance=25,enroll=3,redeem=2`.

use std::fmt;
use std::str::FromStr;

/// One kind of request the load phase sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `recordPurchase` with the INTEGRATION key.
    Purchase,
    /// `member(id) { balance }`.
    Balance,
    /// `enrollMember` with a new external id.
    Enroll,
    /// `redeemReward` of the catalogue's cheapest reward.
    Redeem,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 4] = [Op::Purchase, Op::Balance, Op::Enroll, Op::Redeem];

    pub fn name(self) -> &'static str {
        match self {
            Op::Purchase => "purchase",
            Op::Balance => "balance",
            Op::Enroll => "enroll",
            Op::Redeem => "redeem",
        }
    }

    /// The position of `op` in [`Op::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Op::Purchase => 0,
            Op::Balance => 1,
            Op::Enroll => 2,
            Op::Redeem => 3,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The default of `--mix`.
pub const DEFAULT_MIX: &str = "purchase=70,balance=25,enroll=3,redeem=2";

/// Relative weights of the operations; at least one is positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 4],
}

impl Mix {
    /// The weight of `op` (0: never sent).
    pub fn weight(&self, op: Op) -> u32 {
        self.weights[op.index()]
    }

    /// Sum of all weights (positive).
    pub fn total(&self) -> u64 {
        self.weights.iter().map(|w| u64::from(*w)).sum()
    }

    /// The operation that `ticket` (uniform in `0..total()`) falls on.
    pub fn pick(&self, ticket: u64) -> Op {
        let mut left = ticket;
        for op in Op::ALL {
            let w = u64::from(self.weight(op));
            if left < w {
                return op;
            }
            left -= w;
        }
        // Only reached with a ticket outside `0..total()`: the last weighted operation.
        Op::ALL
            .into_iter()
            .rev()
            .find(|op| self.weight(*op) > 0)
            .unwrap_or(Op::Purchase)
    }
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            weights: [70, 25, 3, 2],
        }
    }
}

impl FromStr for Mix {
    type Err = String;

    /// Parses `name=weight` pairs separated by commas. Names not listed get weight 0; unknown
    /// or repeated names, weights that are not whole numbers, and an all-zero mix are errors.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Op::ALL.map(Op::name).join(", ");
        let mut weights = [0u32; 4];
        let mut seen = [false; 4];
        let mut pairs = 0;
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not name=weight (e.g. {DEFAULT_MIX})"))?;
            let name = name.trim();
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name)
                .ok_or_else(|| format!("unknown operation {name:?} in the mix; known: {known}"))?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("the weight of {name} must be a whole number >= 0, not {weight:?}")
            })?;
            if seen[op.index()] {
                return Err(format!("{name} is given twice in the mix"));
            }
            seen[op.index()] = true;
            weights[op.index()] = weight;
            pairs += 1;
        }
        if pairs == 0 {
            return Err(format!(
                "the mix is empty: give name=weight pairs (e.g. {DEFAULT_MIX})"
            ));
        }
        if weights.iter().all(|w| *w == 0) {
            return Err("every weight of the mix is 0: nothing to send".into());
        }
        Ok(Self { weights })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Op::ALL
            .into_iter()
            .filter(|op| self.weight(*op) > 0)
            .map(|op| format!("{op}={}", self.weight(op)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match s.parse::<Mix>() {
            Ok(m) => panic!("{s:?} parsed as {m}"),
            Err(e) => e,
        }
    }

    #[test]
    fn default_mix_parses_to_the_default() {
        let m: Mix = DEFAULT_MIX.parse().expect("default mix");
        assert_eq!(m, Mix::default());
        assert_eq!(m.to_string(), DEFAULT_MIX);
        assert_eq!(m.total(), 100);
    }

    #[test]
    fn missing_names_get_zero_and_spaces_are_allowed() {
        let m: Mix = " purchase = 3 , redeem=1 ,".parse().expect("mix");
        assert_eq!(m.weight(Op::Purchase), 3);
        assert_eq!(m.weight(Op::Balance), 0);
        assert_eq!(m.weight(Op::Enroll), 0);
        assert_eq!(m.weight(Op::Redeem), 1);
        assert_eq!(m.to_string(), "purchase=3,redeem=1");
        let m: Mix = "balance=1,purchase=0".parse().expect("mix");
        assert_eq!(m.to_string(), "balance=1");
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(err("purchase=70,refund=5").contains("unknown operation \"refund\""));
        assert!(err("purchase=70,refund=5").contains("known: purchase, balance, enroll, redeem"));
        assert!(err("purchase=0,balance=0").contains("every weight of the mix is 0"));
        assert!(err("").contains("empty"));
        assert!(err(" , ").contains("empty"));
        assert!(err("purchase").contains("not name=weight"));
        assert!(err("purchase=-1").contains("whole number"));
        assert!(err("purchase=1.5").contains("whole number"));
        assert!(err("purchase=x").contains("whole number"));
        assert!(err("purchase=1,purchase=2").contains("twice"));
        assert!(err("Purchase=1").contains("unknown operation"));
    }

    #[test]
    fn pick_follows_the_weights() {
        let m: Mix = "purchase=2,enroll=1".parse().expect("mix");
        let picked: Vec<Op> = (0..m.total()).map(|t| m.pick(t)).collect();
        assert_eq!(picked, vec![Op::Purchase, Op::Purchase, Op::Enroll]);
        let m = Mix::default();
        let mut counts = [0u64; 4];
        for t in 0..m.total() {
            counts[m.pick(t).index()] += 1;
        }
        assert_eq!(counts, [70, 25, 3, 2]);
    }
}
