"""BigNAS on Fashion-MNIST: searched subnets with the supernet's weights vs
the same architectures trained from scratch for as many epochs.

The whole experiment in one process, with the configs of
``configs/nas/bignas/bignas_attentive-s_*_fashion-mnist.py``:

1. **Supernet.** The small AttentiveMobileNetV3 space trains for
   ``--epochs`` epochs with the sandwich rule (the largest subnet on the
   labels, two random ones and the smallest on its logits), on the 9,000
   training images not held out. The checkpoint is kept in
   ``--work-dir/supernet`` and reused by reruns with the same settings.
2. **Search.** Three FLOPs budgets, one evolution search under each (the
   search config: BatchNorm re-calibrated for every candidate, candidates
   scored on the 1,000 held-out training images). The budgets are the
   ``--quantiles`` (default 20 %, 50 % and 80 %) of the FLOPs of
   ``--space-samples`` random subnets: a small, a middle and a large
   budget for this space. Thirds of the FLOPs range (smallest to largest
   subnet) would not do: random subnets crowd its lower part (90 % lie
   below half of the range here), so budgets in the upper thirds are met
   by nearly every candidate, the searches under them find the same
   subnets and never come near the budget.
3. **Supernet top-1.** Each searched subnet keeps the supernet's weights;
   its BatchNorm statistics are re-estimated on training batches and it is
   scored on the test split.
4. **From scratch.** Each searched architecture is trained alone from a
   random initialisation (the subnet config: plain cross-entropy, the
   same images, schedule and number of epochs) and scored on the test
   split: ``--seeds-smallest`` seeds (3) for the smallest budget,
   ``--seeds`` (1) for the others.

Outputs: a Markdown table (budget, subnet FLOPs / params, held-out top-1
of the subnet in its search, test top-1 with the supernet's weights, test
top-1 from scratch as mean +- std over seeds; above it the test top-1 of
the smallest and the largest subnet with the supernet's weights) written
to ``--out`` and printed, a plot of top-1 vs FLOPs for both (``--plot``,
default next to ``--out``), ``results.json`` in the work dir. Every stage
writes its result to the work dir and is skipped by a rerun with the same
settings, so an interrupted run continues where it stopped.

Cost, measured with one torch thread on a 2-core machine shared with
other jobs (so the times vary with the load): the ``--quick`` smoke run
(1 epoch on 640 training images, searches of 6 candidates for 2 epochs)
takes 45 s (1.5 minutes under load), the smoke test's settings (64
images) 17 to 55 s. A full run (6 epochs on 9,000 images) took 6.5
minutes on a quiet core:
supernet 3 minutes (30 s per epoch of 141 sandwich steps of four
subnets), each search 25 s (about 42 candidates, each re-calibrated on
640 images and scored on 1,000), each from-scratch run 25-35 s (6 epochs
of one subnet), five of them; under load the same run took 20 minutes.
Time grows linearly with ``--epochs``.

Examples::

    # smoke run (a minute or two)
    python benchmarks/bignas_fashion_mnist.py --quick
    # the full experiment, table for the docs
    python benchmarks/bignas_fashion_mnist.py --work-dir /tmp/bignas_fmnist \\
        --out docs/bignas_fashion_mnist.md
    # more seeds for every budget, longer training for both sides
    python benchmarks/bignas_fashion_mnist.py --seeds 3 --epochs 15
    # a supernet variant (the from-scratch runs are unaffected)
    python benchmarks/bignas_fashion_mnist.py --work-dir /tmp/bignas_v2 \
        --supernet-option model.drop_path_rate=0 \
        optim_wrapper.optimizer.lr=0.05
"""
import argparse
import ast
import copy
import hashlib
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs', 'nas', 'bignas')
SUPERNET_CFG = osp.join(CONFIG_DIR,
                        'bignas_attentive-s_supernet_fashion-mnist.py')
SEARCH_CFG = osp.join(CONFIG_DIR, 'bignas_attentive-s_search_fashion-mnist.py')
SUBNET_CFG = osp.join(CONFIG_DIR, 'bignas_attentive-s_subnet_fashion-mnist.py')
SCORE_KEY = 'accuracy/top1'
#: Settings of ``--quick``: one epoch on a few hundred images, small
#: searches.
QUICK = dict(epochs=1, train_images=640, val_images=250, test_images=500,
             pool_size=6, search_epochs=2, calib_batches=2, space_samples=50)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring).

    Args:
        argv (Sequence[str], optional): Defaults to ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The options, ``--quick`` applied.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='/tmp/bignas_fmnist',
                        help='checkpoints, search results, cache')
    parser.add_argument('--out', default=None,
                        help='Markdown table (default WORK_DIR/table.md)')
    parser.add_argument('--plot', default=None,
                        help='top-1 vs FLOPs plot (default: OUT as .png)')
    parser.add_argument('--epochs', type=int, default=6,
                        help='epochs of the supernet and of every subnet '
                        'trained from scratch')
    parser.add_argument('--quantiles', type=float, nargs=3,
                        default=[0.2, 0.5, 0.8],
                        help='FLOPs budgets as quantiles of the FLOPs of '
                        'random subnets')
    parser.add_argument('--space-samples', type=int, default=200,
                        help='random subnets giving the FLOPs quantiles')
    parser.add_argument('--seeds-smallest', type=int, default=3,
                        help='from-scratch seeds for the smallest budget')
    parser.add_argument('--seeds', type=int, default=1,
                        help='from-scratch seeds for the other budgets')
    parser.add_argument('--pool-size', type=int, default=16,
                        help='candidates per search epoch')
    parser.add_argument('--search-epochs', type=int, default=3)
    parser.add_argument('--calib-batches', type=int, default=10,
                        help='training batches (64 images) re-estimating '
                        'BatchNorm statistics of a subnet')
    parser.add_argument('--train-images', type=int, default=None,
                        help='use only the first N training images')
    parser.add_argument('--val-images', type=int, default=None,
                        help='use only the first N held-out images')
    parser.add_argument('--test-images', type=int, default=None,
                        help='use only the first N test images')
    parser.add_argument('--data-root', default=None,
                        help='Fashion-MNIST IDX files (default: the subset '
                        'in data/)')
    parser.add_argument('--supernet-option', nargs='+', default=[],
                        action='extend', metavar='KEY=VALUE',
                        help='override entries of the supernet config (for '
                        'training, search and scoring; not for the '
                        'from-scratch runs), e.g. model.drop_path_rate=0 '
                        '(values read as Python literals)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: ' + ', '.join(
                            f'{k}={v}' for k, v in QUICK.items())
                        + ' (explicit options win)')
    args = parser.parse_args(argv)
    if args.quick:
        explicit = {a.lstrip('-').split('=')[0].replace('-', '_')
                    for a in (argv if argv is not None else sys.argv[1:])
                    if a.startswith('--')}
        for key, value in QUICK.items():
            if key not in explicit:
                setattr(args, key, value)
    if args.out is None:
        args.out = osp.join(args.work_dir, 'table.md')
    if args.plot is None:
        args.plot = osp.splitext(args.out)[0] + '.png'
    if args.epochs < 1 or args.seeds < 1 or args.seeds_smallest < 1:
        parser.error('--epochs, --seeds and --seeds-smallest must be >= 1')
    if sorted(args.quantiles) != list(args.quantiles) or not all(
            0 < q <= 1 for q in args.quantiles):
        parser.error('--quantiles must be ascending, in (0, 1]')
    return args


class Progress:
    """Progress lines with the time elapsed since the start."""

    def __init__(self) -> None:
        self.start = time.time()

    def __call__(self, message: str) -> None:
        print(f'[{time.time() - self.start:7.1f}s] {message}', flush=True)

    @property
    def elapsed(self) -> float:
        return time.time() - self.start


# ----------------------------------------------------------------- configs
def schedule(epochs: int) -> List[dict]:
    """The schedule of ``fashion_mnist_sgd_cos_6e.py`` stretched to
    ``epochs``: a one-epoch linear warm-up, then cosine decay to the end
    (cosine only for a single epoch)."""
    if epochs == 1:
        return [dict(type='CosineAnnealingLR', T_max=1, by_epoch=True,
                     begin=0, end=1, convert_to_iter_based=True)]
    return [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
             end=1, convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', T_max=epochs - 1, by_epoch=True,
             begin=1, end=epochs, convert_to_iter_based=True),
    ]


def _limit(loader: dict, count: Optional[int],
           data_root: Optional[str]) -> None:
    dataset = loader['dataset']
    if count is not None:
        dataset['indices'] = count
    if data_root is not None:
        dataset['data_root'] = data_root


def load_cfg(path: str, args: argparse.Namespace, work_dir: str,
             name: str, seed: int = 0) -> Config:
    """A config of ``configs/nas/bignas`` set up for one stage of the
    benchmark: work dir, epochs and schedule, data limits, seed, quiet
    logging, validation only at the end.

    Args:
        path (str): The config file.
        args (argparse.Namespace): The benchmark's options.
        work_dir (str): The stage's work dir.
        name (str): The stage's name (mmengine's experiment name).
        seed (int): The run's seed. Defaults to 0.

    Returns:
        Config: The config.
    """
    # No yapf formatting of the config text mmengine logs and dumps: it
    # takes seconds per runner, longer than a quick run's training.
    # (``Config.fromfile(..., format_python_code=False)`` drops the flag.)
    cfg = Config(Config.fromfile(path).to_dict(), filename=path,
                 format_python_code=False)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.launcher = 'none'
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.train_cfg.max_epochs = args.epochs
    # validated once, by the benchmark itself, after training
    cfg.train_cfg.val_interval = args.epochs + 1
    cfg.param_scheduler = schedule(args.epochs)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=args.epochs, max_keep_ckpts=1)
    _limit(cfg.train_dataloader, args.train_images, args.data_root)
    # the supernet config validates on held-out training images and tests
    # on the test split; the subnet config does both on the test split
    cfg.test_dataloader = copy.deepcopy(cfg.test_dataloader)
    for key in ('val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        held_out = loader['dataset'].get('part') == 'holdout'
        _limit(loader, args.val_images if held_out else args.test_images,
               args.data_root)
    if path != SUBNET_CFG:
        # the supernet as trained, also when searched and scored
        cfg.merge_from_dict(supernet_options(args))
    if 'searcher' in cfg:
        pool = args.pool_size
        cfg.searcher.update(
            candidate_pool_size=pool,
            candidate_top_k=max(1, pool // 4),
            num_mutation=max(1, (3 * pool) // 8),
            num_crossover=max(1, (3 * pool) // 8),
            max_epoch=args.search_epochs,
            calib_batches=args.calib_batches)
    return cfg


def test_loader_cfg(cfg: Config) -> dict:
    """The test split as the subnet config reads it (``cfg`` being a
    supernet or search config made by :func:`load_cfg`)."""
    loader = copy.deepcopy(cfg.test_dataloader)
    loader['dataset'].update(split='test', holdout=0, part='rest')
    return loader


# ------------------------------------------------------------------ cache
def fingerprint(*parts: Any) -> str:
    """A short hash of the settings (and config files) a stage depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    for path in (SUPERNET_CFG, SEARCH_CFG, SUBNET_CFG):
        with open(path, 'rb') as f:
            text += hashlib.sha1(f.read()).hexdigest()
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cached(path: str, key: str) -> Optional[dict]:
    """The result stored at ``path`` when it was made with ``key``."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        result = json.load(f)
    return result if result.get('fingerprint') == key else None


def store(path: str, key: str, result: dict) -> dict:
    """Write ``result`` (with its ``fingerprint``) to ``path``."""
    result = dict(result, fingerprint=key)
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)
    return result


def data_settings(args: argparse.Namespace) -> dict:
    return dict(epochs=args.epochs, train_images=args.train_images,
                val_images=args.val_images, test_images=args.test_images,
                data_root=args.data_root)


# ----------------------------------------------------------------- stages
def supernet_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``--supernet-option`` as ``{dotted key: value}``."""
    options = {}
    for item in args.supernet_option:
        key, sep, text = item.partition('=')
        if not sep:
            raise ValueError(f'--supernet-option {item!r}: expected KEY=VALUE')
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def train_supernet(args: argparse.Namespace, log: Progress) -> Tuple[str, str]:
    """Train the supernet, or reuse the one trained with these settings.

    Returns:
        tuple[str, str]: The checkpoint and the fingerprint of its settings.
    """
    from mmrazor.apis import build_runner
    work_dir = osp.join(args.work_dir, 'supernet')
    options = supernet_options(args)
    key = fingerprint('supernet', data_settings(args), options)
    done = cached(osp.join(work_dir, 'result.json'), key)
    if done and osp.isfile(done['checkpoint']):
        log(f'supernet: reusing {done["checkpoint"]} (trained in '
            f'{done["seconds"]:.0f}s)')
        return done['checkpoint'], key
    cfg = load_cfg(SUPERNET_CFG, args, work_dir, 'supernet')
    log(f'supernet: training {args.epochs} epoch(s)')
    start = time.time()
    runner = build_runner(cfg)
    runner.train()
    checkpoint = osp.join(work_dir, f'epoch_{args.epochs}.pth')
    seconds = time.time() - start
    del runner
    store(osp.join(work_dir, 'result.json'), key,
          dict(checkpoint=checkpoint, seconds=seconds, options=options))
    log(f'supernet: done in {seconds:.0f}s')
    return checkpoint, key


class SupernetScorer:
    """The trained supernet, set to a subnet, re-calibrated and scored on
    the test split, as the search scores candidates on the held-out
    images.

    Args:
        args (argparse.Namespace): The benchmark's options.
        checkpoint (str): The trained supernet.
    """

    def __init__(self, args: argparse.Namespace, checkpoint: str) -> None:
        from mmrazor.apis import build_runner, search_loop_cfg
        from mmrazor.registry import LOOPS
        cfg = load_cfg(SEARCH_CFG, args,
                       osp.join(args.work_dir, 'supernet_scores'),
                       'supernet_scores')
        runner = build_runner(cfg)
        runner.load_checkpoint(checkpoint)
        loop_cfg = search_loop_cfg(cfg)
        loop_cfg['dataloader'] = test_loader_cfg(cfg)
        self.loop = LOOPS.build(loop_cfg, default_args=dict(runner=runner))
        self.algorithm = self.loop.searcher.algorithm
        self.calib = self.loop.searcher.calib_dataloader
        self.calib_batches = args.calib_batches
        self.runner = runner

    def resources(self, subnet: Any) -> Dict[str, float]:
        """FLOPs and params of ``subnet`` (a subnet dict or file)."""
        self.algorithm.mutator.load_subnet(subnet)
        return self.algorithm.estimate_resources()

    def random_flops(self, count: int, seed: int = 0) -> List[float]:
        """FLOPs of ``count`` random subnets (sampled with ``seed``)."""
        from mmrazor.core.searchers import seed_everything
        seed_everything(seed)
        flops = []
        for _ in range(count):
            self.algorithm.sample_subnet()
            flops.append(self.algorithm.estimate_resources()['flops'])
        return flops

    def extremes(self) -> Dict[str, Dict[str, float]]:
        """Resources of the smallest and the largest subnet."""
        mutator = self.algorithm.mutator
        mutator.set_min_choices()
        low = self.algorithm.estimate_resources()
        mutator.set_max_choices()
        high = self.algorithm.estimate_resources()
        return dict(min=low, max=high)

    def extremes_top1(self) -> Dict[str, float]:
        """Test top-1 of the smallest and the largest subnet with the
        supernet's weights: the sandwich's two ends, trained at every step
        (the largest on the labels, the smallest on its logits)."""
        mutator = self.algorithm.mutator
        return {kind: self.top1(mutator.sample_choices(kind))
                for kind in ('min', 'max')}

    def top1(self, subnet: Any) -> float:
        """Test top-1 of ``subnet`` (a subnet dict or file) with the
        supernet's weights."""
        from mmrazor.core import recalibrate_bn
        from mmrazor.core.searchers import seed_everything
        self.algorithm.mutator.load_subnet(subnet)
        seed_everything(0)  # the same calibration batches for every subnet
        recalibrate_bn(self.algorithm, self.calib, self.calib_batches)
        with torch.no_grad():
            return float(self.loop.evaluate(self.algorithm)[SCORE_KEY])


def search(args: argparse.Namespace, checkpoint: str, supernet_key: str,
           index: int, budget: float, log: Progress) -> dict:
    """Evolution search under ``budget`` FLOPs (or its cached result).

    Returns:
        dict: ``subnet`` (the best subnet file), ``val_top1`` (its score in
        the search), ``seconds``, ``candidates``.
    """
    from mmrazor.apis import run_search
    work_dir = osp.join(args.work_dir, f'search_{index}')
    key = fingerprint('search', supernet_key, budget, args.pool_size,
                      args.search_epochs, args.calib_batches)
    done = cached(osp.join(work_dir, 'result.json'), key)
    if done and osp.isfile(done['subnet']):
        log(f'search {index}: reusing {done["subnet"]}')
        return done
    cfg = load_cfg(SEARCH_CFG, args, work_dir, f'search_{index}')
    cfg.searcher.constraints = dict(flops=budget)
    log(f'search {index}: budget {budget / 1e6:.3f}M FLOPs, '
        f'{args.search_epochs} epoch(s) of {args.pool_size} candidates')
    start = time.time()
    run_search(cfg, checkpoint)
    with open(osp.join(work_dir, 'candidates.json')) as f:
        candidates = json.load(f)
    with open(osp.join(work_dir, 'search_state.json')) as f:
        state = json.load(f)
    best = state['evaluated'][state['top_k'][0]]
    result = dict(
        subnet=osp.join(work_dir, 'best_subnet.yaml'),
        val_top1=float(best['score']),
        seconds=time.time() - start,
        candidates=len(candidates))
    log(f'search {index}: best held-out top-1 {result["val_top1"]:.2f} '
        f'with {best["resources"]} ({result["candidates"]} candidates, '
        f'{result["seconds"]:.0f}s)')
    return store(osp.join(work_dir, 'result.json'), key, result)


def train_from_scratch(args: argparse.Namespace, index: int, subnet: str,
                       seed: int, log: Progress) -> dict:
    """Train the architecture of ``subnet`` from scratch (or reuse the run
    made with these settings) and score it on the test split.

    Returns:
        dict: ``top1`` and ``seconds``.
    """
    from mmrazor.apis import build_runner
    work_dir = osp.join(args.work_dir, f'scratch_{index}_seed{seed}')
    with open(subnet) as f:
        subnet_text = f.read()
    key = fingerprint('scratch', data_settings(args), subnet_text, seed)
    done = cached(osp.join(work_dir, 'result.json'), key)
    if done:
        log(f'from scratch {index} seed {seed}: reusing top-1 '
            f'{done["top1"]:.2f}')
        return done
    cfg = load_cfg(SUBNET_CFG, args, work_dir, f'scratch_{index}_{seed}',
                   seed=seed)
    cfg.model.fix_subnet = subnet
    cfg.default_hooks.checkpoint = None  # nothing to keep
    log(f'from scratch {index} seed {seed}: training {args.epochs} '
        'epoch(s)')
    start = time.time()
    runner = build_runner(cfg)
    runner.train()
    top1 = float(runner.test()[SCORE_KEY])
    seconds = time.time() - start
    del runner
    log(f'from scratch {index} seed {seed}: test top-1 {top1:.2f} '
        f'({seconds:.0f}s)')
    return store(osp.join(work_dir, 'result.json'), key,
                 dict(top1=top1, seconds=seconds))


# ---------------------------------------------------------------- outputs
def mean_std(values: Sequence[float]) -> str:
    """``mean +- std`` (sample std; the value alone for one run)."""
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def table(rows: List[dict], args: argparse.Namespace,
          extremes: Dict[str, Dict[str, float]]) -> str:
    """The Markdown table of the results (with a line on the setup).

    The held-out column is the searched subnet's score in its search: the
    best of all the candidates scored on the same 1,000 held-out images, so
    it is biased upwards by the selection (and the held-out images are
    easier than the test split for every model measured); the other
    top-1 columns are on the test split.
    """
    lines = [
        f'BigNAS on Fashion-MNIST ({args.train_images or 9000} training '
        f'images, {args.epochs} epoch(s) for the supernet and for every '
        f'subnet from scratch; top-1 on {args.test_images or 2000} test '
        'images). Space: '
        f'{extremes["min"]["flops"] / 1e6:.3f}M to '
        f'{extremes["max"]["flops"] / 1e6:.3f}M FLOPs; top-1 with the '
        'supernet\'s weights of its smallest subnet '
        f'{extremes["min"]["supernet_top1"]:.2f}, of its largest '
        f'{extremes["max"]["supernet_top1"]:.2f}.',
        '',
        '| budget: FLOPs (quantile) | subnet FLOPs | subnet params | '
        'held-out top-1 in the search | top-1 supernet '
        'weights | top-1 from scratch | seeds | supernet - scratch |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        scratch = r['scratch_top1']
        gap = r['supernet_top1'] - statistics.mean(scratch)
        lines.append(
            f'| {r["budget"] / 1e6:.3f}M (q{r["quantile"]:.2f}) | '
            f'{r["flops"] / 1e6:.3f}M | {r["params"] / 1e3:.1f}K | '
            f'{r["val_top1"]:.2f} | '
            f'{r["supernet_top1"]:.2f} | {mean_std(scratch)} | '
            f'{len(scratch)} | {gap:+.2f} |')
    return '\n'.join(lines) + '\n'


def plot(rows: List[dict], path: str) -> bool:
    """Top-1 vs FLOPs, supernet weights and from scratch (error bars: std
    over seeds). Returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    flops = [r['flops'] / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(flops, [r['supernet_top1'] for r in rows], 'o-',
            label='supernet weights (BN re-calibrated)')
    ax.errorbar(
        flops, [statistics.mean(r['scratch_top1']) for r in rows],
        yerr=[statistics.stdev(r['scratch_top1'])
              if len(r['scratch_top1']) > 1 else 0 for r in rows],
        fmt='s--', capsize=3, label='trained from scratch')
    ax.set_xlabel('subnet FLOPs (M multiply-adds, 1 image)')
    ax.set_ylabel('test top-1 (%)')
    ax.set_title('BigNAS on Fashion-MNIST')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict:
    """Run the experiment (see the module docstring).

    Args:
        args (argparse.Namespace): From :func:`parse_args`.

    Returns:
        dict: ``rows`` (one per budget), ``extremes``, ``table`` (the
        Markdown), ``seconds``.
    """
    from mmrazor.utils import register_all_modules
    torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    log = Progress()
    os.makedirs(args.work_dir, exist_ok=True)
    checkpoint, supernet_key = train_supernet(args, log)
    scorer = SupernetScorer(args, checkpoint)
    extremes = scorer.extremes()
    low, high = extremes['min']['flops'], extremes['max']['flops']
    samples = scorer.random_flops(args.space_samples)
    budgets = [float(b) for b in numpy.quantile(samples, args.quantiles)]
    extremes['random_median'] = dict(flops=float(numpy.median(samples)))
    for kind, top1 in scorer.extremes_top1().items():
        extremes[kind]['supernet_top1'] = top1
    log(f'space: {low / 1e6:.3f}M to {high / 1e6:.3f}M FLOPs; budgets '
        f'(quantiles {args.quantiles} of {args.space_samples} random '
        f'subnets): ' + ', '.join(f'{b / 1e6:.3f}M' for b in budgets))
    rows = []
    for i, (quantile, budget) in enumerate(zip(args.quantiles, budgets)):
        found = search(args, checkpoint, supernet_key, i, budget, log)
        resources = scorer.resources(found['subnet'])
        top1 = scorer.top1(found['subnet'])
        log(f'budget {i}: subnet {resources["flops"] / 1e6:.3f}M FLOPs, '
            f'supernet-weights test top-1 {top1:.2f}')
        rows.append(dict(index=i, quantile=quantile, budget=budget,
                         subnet=found['subnet'], flops=resources['flops'],
                         params=resources['params'], supernet_top1=top1,
                         val_top1=found['val_top1']))
    del scorer
    for row in rows:
        seeds = args.seeds_smallest if row['index'] == 0 else args.seeds
        row['scratch_top1'] = [
            train_from_scratch(args, row['index'], row['subnet'], seed,
                               log)['top1'] for seed in range(seeds)
        ]
    text = table(rows, args, extremes)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text)
    plotted = plot(rows, args.plot)
    result = dict(rows=rows, extremes=extremes, table=text,
                  seconds=log.elapsed)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(result, settings=vars(args)), f, indent=2)
    print()
    print(text)
    log(f'table: {args.out}' + (f'; plot: {args.plot}' if plotted else
                                '; no plot (matplotlib missing)'))
    return result


def main() -> None:
    run(parse_args())


if __name__ == '__main__':
    main()
