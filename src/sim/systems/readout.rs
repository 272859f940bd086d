//! Readout: output signals, logits, prediction and loss (SPEC 4 readout, SPEC 6).

use bevy_ecs::prelude::*;

use super::Ctx;
use crate::model::MAX_DIM;
use crate::model::loss;
use crate::sim::components::{Activation, OutputNode};
use crate::sim::resources::{CurrentSample, Encodings, Readout};

/// Computes so_k for every active output (in output-slot order, so the mean is summed in a
/// fixed order), the logits, the prediction and the loss. With no active output the sample has
/// no prediction and no loss.
pub fn readout(
    outputs: Query<(&OutputNode, &Activation)>,
    encodings: Res<Encodings>,
    sample: Res<CurrentSample>,
    mut result: ResMut<Readout>,
    ctx: Ctx,
) {
    let _t = ctx.time();
    let (settings, tables) = (&ctx.settings, &ctx.tables.0);
    let dim = settings.dim;
    let mut active: Vec<(u32, [f32; MAX_DIM])> = outputs
        .iter()
        .map(|(o, a)| {
            let mut s = [0.0; MAX_DIM];
            tables.signal_vec(&a.phase[..dim], &a.magnitude[..dim], &mut s[..dim]);
            (o.slot, s)
        })
        .collect();
    active.sort_unstable_by_key(|&(slot, _)| slot);
    result.active_outputs = active.len() as u32;
    if active.is_empty() {
        result.logits.clear();
        result.prediction = None;
        result.loss = None;
        return;
    }
    let signals: Vec<f32> = active
        .iter()
        .flat_map(|(_, s)| s[..dim].iter().copied())
        .collect();
    let slots: Vec<u32> = active.iter().map(|&(slot, _)| slot).collect();
    let classes = encodings.0.classes;
    result.logits.resize(classes, 0.0);
    crate::model::readout::logits(
        settings.readout,
        &signals,
        &slots,
        &encodings.0.signals,
        &mut result.logits,
    );
    result.prediction = Some(loss::predict(&result.logits) as u8);
    result.loss = Some(loss::cross_entropy(
        &result.logits,
        sample.label as usize,
        settings.temperature,
        settings.label_smoothing,
    ));
}
