//! Training: the optimizer loop around [`Seq2Seq::train_batch`], dev evaluation, learning-rate
//! reduction on plateau and early stopping. It knows nothing of files or terminals: the caller
//! gets every event through a callback (the CLI draws progress, logs and checkpoints there).

use serde::{Deserialize, Serialize};

use crate::collective::{rank_share, target_tokens, Collective, SingleProcess};
use crate::data::batch::{batch_groups, make_batches, Batch, BatchOptions, Example};
use crate::error::{Error, Result};
use crate::eval::{exact_match, EvalExample};
use crate::module::{seeded_rng, Module, Rng64};
use crate::optim::{clip_grad_norm, Adam, AdamConfig, AdamW, Optimizer};
use crate::seq2seq::{Seq2Seq, Seq2SeqConfig, TokenBatch, TrainOptions};

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam, weight decay as L2.
    Adam,
    /// AdamW, decoupled weight decay.
    AdamW,
}

/// Every training option, with defaults (TOML section `[train]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// Adam betas.
    pub betas: (f32, f32),
    /// Adam epsilon.
    pub eps: f32,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_norm: f32,
    /// Label smoothing of the cross entropy.
    pub label_smoothing: f32,
    /// Scheduled sampling probability (0 = pure teacher forcing).
    pub sampling_probability: f32,
    /// Token budget per batch (padding included).
    pub max_tokens: usize,
    /// Maximum sentences per batch (0 = no limit).
    pub max_sentences: usize,
    /// Passes over the training data.
    pub epochs: usize,
    /// Stop after this many optimizer steps (0 = no limit).
    pub max_steps: usize,
    /// Evaluate on dev every this many steps (0 = at the end of each epoch).
    pub eval_every: usize,
    /// Stop after this many evaluations without a better dev accuracy (0 = never).
    pub patience: usize,
    /// Multiply the learning rate by this after `plateau_patience` evaluations without
    /// improvement (1 = never).
    pub plateau_factor: f32,
    /// Evaluations without improvement before the learning rate is reduced.
    pub plateau_patience: usize,
    /// The learning rate is never reduced below this.
    pub min_lr: f32,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Evaluate on at most this many dev examples (0 = all).
    pub dev_limit: usize,
    /// Longest output when decoding dev, as a multiple of the source length (+ 5 tokens).
    pub dev_max_len_ratio: f32,
    /// Keep the models of the last this many evaluations in `OUT/checkpoints/step-NNNNNN/`,
    /// for `recur average` (0 = none: only `best/` and `last/`).
    pub keep_last: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: 5.0,
            label_smoothing: 0.0,
            sampling_probability: 0.0,
            max_tokens: 2048,
            max_sentences: 0,
            epochs: 10,
            max_steps: 0,
            eval_every: 0,
            patience: 0,
            plateau_factor: 0.5,
            plateau_patience: 2,
            min_lr: 1e-5,
            seed: 1,
            dev_limit: 0,
            dev_max_len_ratio: 3.0,
            keep_last: 0,
        }
    }
}

impl TrainConfig {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "[train]";
        let positive = |name: &'static str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::arg(OP, name, "a finite number > 0", v))
            }
        };
        let within = |name: &'static str, v: f32, range: std::ops::Range<f32>, what: &str| {
            if range.contains(&v) {
                Ok(())
            } else {
                Err(Error::arg(OP, name, what, v))
            }
        };
        positive("lr", self.lr)?;
        positive("eps", self.eps)?;
        positive("dev_max_len_ratio", self.dev_max_len_ratio)?;
        within("betas.0", self.betas.0, 0.0..1.0, "a number in [0, 1)")?;
        within("betas.1", self.betas.1, 0.0..1.0, "a number in [0, 1)")?;
        within(
            "weight_decay",
            self.weight_decay,
            0.0..f32::INFINITY,
            "a number >= 0",
        )?;
        within(
            "clip_norm",
            self.clip_norm,
            0.0..f32::INFINITY,
            "a number >= 0 (0 = off)",
        )?;
        within(
            "label_smoothing",
            self.label_smoothing,
            0.0..1.0,
            "a number in [0, 1)",
        )?;
        within("min_lr", self.min_lr, 0.0..f32::INFINITY, "a number >= 0")?;
        if !(0.0..=1.0).contains(&self.sampling_probability) {
            let v = self.sampling_probability;
            return Err(Error::arg(
                OP,
                "sampling_probability",
                "a probability in [0, 1]",
                v,
            ));
        }
        if !(self.plateau_factor > 0.0 && self.plateau_factor <= 1.0) {
            let v = self.plateau_factor;
            return Err(Error::arg(
                OP,
                "plateau_factor",
                "a factor in (0, 1] (1 = off)",
                v,
            ));
        }
        if self.max_tokens == 0 {
            return Err(Error::arg(OP, "max_tokens", ">= 1", 0));
        }
        if self.epochs == 0 {
            return Err(Error::arg(OP, "epochs", ">= 1", 0));
        }
        Ok(())
    }
}

/// Something that happened during training, for the caller to show, log or checkpoint.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// One optimizer step.
    Step {
        /// Steps so far.
        step: usize,
        /// Current epoch (from 1).
        epoch: usize,
        /// Mean loss over the batch's target tokens.
        train_loss: f32,
        /// Target tokens in the batch.
        tokens: usize,
        /// Global gradient norm before clipping.
        grad_norm: f32,
        /// Learning rate used.
        lr: f32,
    },
    /// A dev evaluation.
    Eval {
        /// Steps so far.
        step: usize,
        /// Current epoch.
        epoch: usize,
        /// Exact-match accuracy of greedy decoding on dev.
        dev_accuracy: f64,
        /// Whether it is the best so far.
        best: bool,
        /// Learning rate after any plateau reduction.
        lr: f32,
    },
}

/// The optimizer chosen by a [`TrainConfig`].
pub fn make_optimizer(cfg: &TrainConfig) -> Result<Box<dyn Optimizer + Send>> {
    let ac = AdamConfig {
        lr: cfg.lr,
        betas: cfg.betas,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
    };
    Ok(match cfg.optimizer {
        OptimizerKind::Adam => Box::new(Adam::new(ac)?),
        OptimizerKind::AdamW => Box::new(AdamW::new(ac)?),
    })
}

/// Where a run stands: enough to continue it exactly.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Optimizer steps taken.
    pub step: usize,
    /// The epoch in progress (from 1; 0 before the first), or the next one once an epoch is
    /// complete, so a checkpoint taken at an epoch's end resumes with the next epoch.
    pub epoch: usize,
    /// Batches of the current epoch already done.
    pub batch_in_epoch: usize,
    /// Dev evaluations so far.
    pub evals: usize,
    /// Best dev accuracy so far.
    pub best_accuracy: f64,
    /// Evaluations since the best one.
    pub evals_since_best: usize,
    /// Evaluations since the last improvement or learning-rate reduction.
    pub evals_since_reduce: usize,
}

impl Progress {
    /// The last epoch trained in (the current one mid-epoch, the one just completed at an
    /// epoch's end).
    pub fn last_epoch(&self) -> usize {
        if self.batch_in_epoch == 0 {
            self.epoch.saturating_sub(1).max(1)
        } else {
            self.epoch
        }
    }
}

/// A model, its optimizer and the training loop state.
pub struct Trainer {
    /// The model being trained.
    pub model: Seq2Seq,
    /// Its optimizer.
    pub optimizer: Box<dyn Optimizer + Send>,
    /// Options.
    pub config: TrainConfig,
    /// Where the run stands.
    pub progress: Progress,
    /// A data-parallel step's exchange buffers (this rank's flat gradients and extras, and
    /// their sum over the ranks), kept between steps so that their 30 MB are not allocated
    /// and faulted in again at every step.
    exchange: [Vec<f32>; 2],
}

impl Trainer {
    /// A fresh model from `model_cfg`, initialised from the training seed.
    pub fn new(model_cfg: Seq2SeqConfig, config: TrainConfig) -> Result<Self> {
        let model = Seq2Seq::new(model_cfg, &mut seeded_rng(config.seed))?;
        Ok(Trainer {
            optimizer: make_optimizer(&config)?,
            model,
            config,
            progress: Progress::default(),
            exchange: [Vec::new(), Vec::new()],
        })
    }

    /// One optimizer step on one batch; returns (loss, gradient norm before clipping).
    ///
    /// A non-finite loss is an error naming the step, and leaves the parameters untouched.
    pub fn train_step(&mut self, batch: &Batch, rng: &mut Rng64) -> Result<(f32, f32)> {
        let loss = self.forward_backward(batch, rng)?;
        let norm = self.clip_and_update()?;
        Ok((loss, norm))
    }

    /// The gradients of `batch`'s mean loss, in the parameters' `grad`s (zeroed first);
    /// returns the loss. A non-finite loss is an error naming the step.
    fn forward_backward(&mut self, batch: &Batch, rng: &mut Rng64) -> Result<f32> {
        self.model.zero_grad();
        let tb = TokenBatch {
            src: &batch.src,
            src_lengths: &batch.src_lengths,
            tgt_in: &batch.tgt_in,
            tgt_out: &batch.tgt_out,
        };
        let opts = TrainOptions {
            label_smoothing: self.config.label_smoothing,
            sampling_probability: self.config.sampling_probability,
        };
        let out = self.model.train_batch(tb, opts, rng)?;
        if !out.loss.is_finite() {
            return Err(Error::arg(
                "train",
                "loss",
                "a finite number",
                format!("{} at step {}", out.loss, self.progress.step + 1),
            ));
        }
        Ok(out.loss)
    }

    /// Clips the gradients to the configured global norm and takes one optimizer step;
    /// returns the norm before clipping.
    fn clip_and_update(&mut self) -> Result<f32> {
        let mut params = self.model.params_mut();
        let norm = if self.config.clip_norm > 0.0 {
            clip_grad_norm(&mut params, self.config.clip_norm)
        } else {
            clip_grad_norm(&mut params, f32::INFINITY)
        };
        self.optimizer.step(&mut params)?;
        self.progress.step += 1;
        Ok(norm)
    }

    /// One data-parallel step on global batch `batch` of epoch `epoch` (see
    /// [`crate::collective`]): this rank's share forward and backward, one allreduce of the
    /// token-weighted gradients, the loss and the stop votes, then the same clipped update on
    /// every rank. With one rank it is [`Trainer::train_step`] on the whole batch.
    fn shared_step(
        &mut self,
        group: &[&Example],
        (epoch, batch): (usize, usize),
        team: &dyn Collective,
        local_votes: &mut impl FnMut() -> StopVotes,
    ) -> Result<StepOutcome> {
        let share = rank_share(group, team.rank(), team.size());
        let tokens = target_tokens(group);
        let mut rng = self.rank_batch_rng(epoch, batch, team.rank());
        if team.size() == 1 {
            let (loss, norm) = self.train_step(&Batch::collate(&share), &mut rng)?;
            let votes = local_votes();
            return Ok(StepOutcome {
                loss,
                norm,
                tokens,
                votes,
            });
        }
        let local_loss = if share.is_empty() {
            self.model.zero_grad();
            0.0
        } else {
            self.forward_backward(&Batch::collate(&share), &mut rng)?
        };
        // Each rank's mean is over its own tokens; weighting it by its share of the batch's
        // tokens makes the sum the mean over the global batch, as one process computes it.
        let weight = target_tokens(&share) as f32 / tokens.max(1) as f32;
        let votes = local_votes();
        let [mut flat, mut sum] = std::mem::take(&mut self.exchange);
        self.fill_flat_gradients(&mut flat, weight);
        flat.extend([
            local_loss * weight,
            f32::from(u8::from(votes.stop)),
            f32::from(u8::from(votes.time_limit)),
        ]);
        sum.resize(flat.len(), 0.0);
        team.allreduce_sum(&flat, &mut sum)?;
        let grads = sum.len() - SHARED_EXTRAS;
        let extras = [sum[grads], sum[grads + 1], sum[grads + 2]];
        self.set_gradients(&sum[..grads]);
        self.exchange = [flat, sum];
        let norm = self.clip_and_update()?;
        let votes = StopVotes {
            stop: extras[1] > 0.0,
            time_limit: extras[2] > 0.0,
        };
        Ok(StepOutcome {
            loss: extras[0],
            norm,
            tokens,
            votes,
        })
    }

    /// Replaces `flat` by every gradient times `weight`, in [`Module::params`] order (its
    /// capacity is kept: after the first step it is not allocated again).
    fn fill_flat_gradients(&self, flat: &mut Vec<f32>, weight: f32) {
        flat.clear();
        for p in self.model.params() {
            flat.extend(p.grad.data().iter().map(|g| g * weight));
        }
    }

    /// The inverse of [`Trainer::fill_flat_gradients`] (without a weight).
    fn set_gradients(&mut self, flat: &[f32]) {
        let mut rest = flat;
        for p in self.model.params_mut() {
            let (mine, tail) = rest.split_at(p.grad.numel());
            p.grad.data_mut().copy_from_slice(mine);
            rest = tail;
        }
    }

    /// Evaluates on `dev`, updates best/plateau bookkeeping; returns (accuracy, is best).
    pub fn evaluate(&mut self, dev: &[EvalExample]) -> Result<(f64, bool)> {
        let acc = exact_match(
            &self.model,
            self.dev_part(dev),
            self.config.dev_max_len_ratio,
        )?;
        Ok((acc, self.record_accuracy(acc)))
    }

    /// [`Trainer::evaluate`] in a data-parallel run: rank 0 evaluates and broadcasts the
    /// accuracy, so that every rank reduces the learning rate and stops early alike.
    fn evaluate_shared(
        &mut self,
        dev: &[EvalExample],
        team: &dyn Collective,
    ) -> Result<(f64, bool)> {
        if team.size() == 1 {
            return self.evaluate(dev);
        }
        let mut acc = if team.is_root() {
            exact_match(
                &self.model,
                self.dev_part(dev),
                self.config.dev_max_len_ratio,
            )?
        } else {
            0.0
        };
        let mut bytes = acc.to_le_bytes().to_vec();
        team.broadcast_bytes(&mut bytes)?;
        let received: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::arg("train", "dev accuracy from rank 0", "8 bytes", bytes.len()))?;
        acc = f64::from_le_bytes(received);
        Ok((acc, self.record_accuracy(acc)))
    }

    /// Updates the best/plateau bookkeeping with a new dev accuracy; returns whether it is the
    /// best so far.
    fn record_accuracy(&mut self, acc: f64) -> bool {
        let p = &mut self.progress;
        let best = p.evals == 0 || acc > p.best_accuracy;
        p.evals += 1;
        if best {
            p.best_accuracy = acc;
            p.evals_since_best = 0;
            p.evals_since_reduce = 0;
        } else {
            p.evals_since_best += 1;
            p.evals_since_reduce += 1;
            if self.config.plateau_factor < 1.0
                && p.evals_since_reduce >= self.config.plateau_patience.max(1)
            {
                let lr = (self.optimizer.lr() * self.config.plateau_factor).max(self.config.min_lr);
                self.optimizer.set_lr(lr);
                p.evals_since_reduce = 0;
            }
        }
        best
    }

    /// The part of `dev` that evaluations use: the first `dev_limit` examples (0: all).
    pub fn dev_part<'a>(&self, dev: &'a [EvalExample]) -> &'a [EvalExample] {
        match self.config.dev_limit {
            0 => dev,
            n => &dev[..dev.len().min(n)],
        }
    }

    /// Whether the run is over: every epoch done, the step limit reached, or early stopping.
    /// A resumed run that is over trains nothing more.
    pub fn finished(&self) -> bool {
        self.progress.epoch > self.config.epochs || self.should_stop()
    }

    /// Whether early stopping or the step limit says stop.
    pub fn should_stop(&self) -> bool {
        (self.config.patience > 0 && self.progress.evals_since_best >= self.config.patience)
            || (self.config.max_steps > 0 && self.progress.step >= self.config.max_steps)
    }

    /// The batches of epoch `epoch` (shuffled with `seed + epoch`, so a resumed run sees the
    /// same order).
    pub fn epoch_batches(&self, train: &[Example], epoch: usize) -> Result<Vec<Batch>> {
        make_batches(train, &self.batch_options(epoch))
    }

    fn batch_options(&self, epoch: usize) -> BatchOptions {
        BatchOptions {
            max_tokens: self.config.max_tokens,
            max_sentences: (self.config.max_sentences > 0).then_some(self.config.max_sentences),
            shuffle: true,
            seed: self.config.seed.wrapping_add(epoch as u64),
        }
    }

    /// The dropout RNG of batch `batch` of epoch `epoch`: derived, not carried, so a resumed run
    /// draws exactly the masks the uninterrupted run would have.
    pub fn batch_rng(&self, epoch: usize, batch: usize) -> Rng64 {
        seeded_rng(
            self.config.seed
                ^ ((epoch as u64) << 32)
                ^ (batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    }

    /// The dropout RNG of `rank`'s share of a batch: [`Trainer::batch_rng`] for rank 0 (so one
    /// process draws what it always drew), another stream for every other rank.
    fn rank_batch_rng(&self, epoch: usize, batch: usize, rank: usize) -> Rng64 {
        seeded_rng(
            self.config.seed
                ^ ((epoch as u64) << 32)
                ^ (batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (rank as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        )
    }

    /// Trains until the epochs run out, the step limit, or early stopping; calls `on_event`
    /// after every step and evaluation (it may save checkpoints, and may stop the run by
    /// returning `false`).
    pub fn fit(
        &mut self,
        train: &[Example],
        dev: &[EvalExample],
        mut on_event: impl FnMut(&Trainer, &Event) -> Result<bool>,
    ) -> Result<()> {
        self.fit_shared(
            train,
            dev,
            &SingleProcess,
            StopVotes::default,
            |tr, ev, _| on_event(tr, ev),
        )
    }

    /// [`Trainer::fit`] as one rank of a data-parallel run (see [`crate::collective`]); every
    /// rank of `team` calls it with the same data and configuration.
    ///
    /// `local_votes` says whether this rank wants to stop (a signal, its time limit); it is
    /// asked at every step, and `on_event` receives what the ranks agreed: any rank's stop
    /// stops all after the same step. With one rank the votes are this rank's own.
    pub fn fit_shared(
        &mut self,
        train: &[Example],
        dev: &[EvalExample],
        team: &dyn Collective,
        mut local_votes: impl FnMut() -> StopVotes,
        mut on_event: impl FnMut(&Trainer, &Event, StopVotes) -> Result<bool>,
    ) -> Result<()> {
        let start_epoch = self.progress.epoch.max(1);
        for epoch in start_epoch..=self.config.epochs {
            self.progress.epoch = epoch;
            let groups = batch_groups(train, &self.batch_options(epoch))?;
            let skip = std::mem::take(&mut self.progress.batch_in_epoch);
            for (i, group) in groups.iter().enumerate().skip(skip) {
                let lr = self.optimizer.lr();
                let step = self.shared_step(group, (epoch, i), team, &mut local_votes)?;
                self.progress.batch_in_epoch = i + 1;
                let ev = Event::Step {
                    step: self.progress.step,
                    epoch,
                    train_loss: step.loss,
                    tokens: step.tokens,
                    grad_norm: step.norm,
                    lr,
                };
                if !on_event(self, &ev, step.votes)? {
                    return Ok(());
                }
                let due = self.config.eval_every > 0
                    && self.progress.step.is_multiple_of(self.config.eval_every);
                let votes = Self::votes_after_eval(team, step.votes, &mut local_votes);
                if due && !self.eval_and_report(dev, epoch, team, votes, &mut on_event)? {
                    return Ok(());
                }
                if self.should_stop() {
                    return Ok(());
                }
            }
            // The epoch is complete: a checkpoint from here on resumes at the next one.
            (self.progress.epoch, self.progress.batch_in_epoch) = (epoch + 1, 0);
            let votes = Self::votes_after_eval(team, StopVotes::default(), &mut local_votes);
            if self.config.eval_every == 0
                && !self.eval_and_report(dev, epoch, team, votes, &mut on_event)?
            {
                return Ok(());
            }
            if self.should_stop() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The votes an evaluation event carries: one process asks afresh; ranks keep what their
    /// last step agreed (they may not decide apart between steps).
    fn votes_after_eval(
        team: &dyn Collective,
        agreed: StopVotes,
        local_votes: &mut impl FnMut() -> StopVotes,
    ) -> StopVotes {
        if team.size() == 1 {
            local_votes()
        } else {
            agreed
        }
    }

    fn eval_and_report(
        &mut self,
        dev: &[EvalExample],
        epoch: usize,
        team: &dyn Collective,
        votes: StopVotes,
        on_event: &mut impl FnMut(&Trainer, &Event, StopVotes) -> Result<bool>,
    ) -> Result<bool> {
        if dev.is_empty() {
            return Ok(true);
        }
        let (acc, best) = self.evaluate_shared(dev, team)?;
        let ev = Event::Eval {
            step: self.progress.step,
            epoch,
            dev_accuracy: acc,
            best,
            lr: self.optimizer.lr(),
        };
        on_event(self, &ev, votes)
    }
}

/// Whether any rank wants the run to stop after the current step, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopVotes {
    /// A caller asked to stop (a signal, a server's cancel): checkpoint and stop.
    pub stop: bool,
    /// A time limit has passed: checkpoint, evaluate and stop.
    pub time_limit: bool,
}

/// Values appended to the gradients in a data-parallel step's allreduce: the weighted loss and
/// the two stop votes.
const SHARED_EXTRAS: usize = 3;

/// What one (possibly data-parallel) step reports.
struct StepOutcome {
    /// Mean loss over the global batch's target tokens.
    loss: f32,
    /// Global gradient norm before clipping.
    norm: f32,
    /// Target tokens of the global batch.
    tokens: usize,
    /// What the ranks agreed about stopping.
    votes: StopVotes,
}

/// `(source, target)` strings as pairs with 1-based line numbers (for generated data).
pub fn pairs_from_strings(pairs: &[(String, String)]) -> Vec<crate::data::Pair> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (s, t))| crate::data::Pair {
            src: s.clone(),
            tgt: t.clone(),
            line: i + 1,
        })
        .collect()
}
