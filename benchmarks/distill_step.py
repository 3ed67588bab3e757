"""Cost of a distillation training step.

Measures, side by side in one process and on the same batch:

* **distill**: one ``GeneralDistill`` training step (teacher forward under
  ``no_grad`` with recording hooks, student forward and backward with the
  distillation loss, optimizer step); with ``--algorithm configurable`` the
  same KD as a 1.x ``SingleTeacherDistill`` with a ``ConfigurableDistiller``
  (recorders of ``head.fc``, ``loss_forward_mappings``);
* **baseline**: a teacher forward under ``no_grad`` plus a plain student
  training step (forward, backward, optimizer step) — the least work any
  distillation implementation must do;

and prints the ratio of their median (and minimum) times (target: <= 1.10).
Both start from preprocessed data; the two are interleaved round by round so
that machine load affects both alike. On a small CPU shared with other
processes, use ``--threads 1``: with more threads than free cores, OpenMP
thread contention adds noise far larger than the difference measured.

    python benchmarks/distill_step.py   # CPU, the Fashion-MNIST models
    python benchmarks/distill_step.py --algorithm configurable
    python benchmarks/distill_step.py --device cuda --batch-size 256
"""
import argparse
import copy
import statistics

import torch
from _timing import make_sync, run_interleaved, timed
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmrazor.registry import MODELS
from mmrazor.utils import register_all_modules

KD_CFG = ('configs/distill/fashion_mnist/'
          'kd_resnet18-w16_resnet18-w4_fashion-mnist.py')


def make_batch(n: int, size: int, device: str) -> dict:
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=[
            torch.randint(
                0, 256, (1, size, size), generator=g, dtype=torch.uint8)
            for _ in range(n)
        ],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])


def configurable_kd(cfg: Config) -> dict:
    """The KD of ``cfg`` (a ``GeneralDistill`` config) as a 1.x
    ``SingleTeacherDistill`` with a ``ConfigurableDistiller``."""
    (component, ) = cfg.model.distiller.components
    (loss, ) = component['losses']
    loss = {k: v for k, v in loss.items() if k != 'name'}
    fc = dict(type='ModuleOutputs', source=component['student_module'])
    return dict(
        type='SingleTeacherDistill',
        architecture=cfg.model.architecture.model,
        teacher=cfg.model.distiller.teacher,
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(fc=fc),
            teacher_recorders=dict(
                fc=dict(fc, source=component['teacher_module'])),
            distill_losses=dict(loss_kd=loss),
            loss_forward_mappings=dict(
                loss_kd=dict(
                    preds_S=dict(from_student=True, recorder='fc'),
                    preds_T=dict(from_student=False, recorder='fc')))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=KD_CFG)
    parser.add_argument(
        '--algorithm',
        choices=['general', 'configurable'],
        default='general',
        help='GeneralDistill (the config as it is) or the same KD as a 1.x '
        'SingleTeacherDistill + ConfigurableDistiller')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--size', type=int, default=28, help='image size')
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=False)

    cfg = Config.fromfile(args.config)
    cfg.model.distiller.teacher_ckpt = None  # weights do not change timing
    if args.algorithm == 'configurable':
        alg = MODELS.build(configurable_kd(cfg)).to(args.device)
        student, teacher = alg.architecture, alg.teacher
    else:
        alg = MODELS.build(cfg.model).to(args.device)
        student, teacher = alg.architecture.model, alg.distiller.teacher
    # The baseline: the same student and teacher, as plain models.
    student = copy.deepcopy(student)
    teacher = copy.deepcopy(teacher)
    alg.train()
    student.train()
    teacher.eval()
    opt_kw = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)
    distill_optim = OptimWrapper(
        torch.optim.SGD([p for p in alg.parameters() if p.requires_grad],
                        **opt_kw))
    student_optim = OptimWrapper(
        torch.optim.SGD(student.parameters(), **opt_kw))

    data = alg.data_preprocessor(
        make_batch(args.batch_size, args.size, args.device), True)
    inputs, samples = data['inputs'], data['data_samples']

    def distill_step() -> None:
        losses = alg(inputs, samples, mode='loss')
        loss, _ = alg.parse_losses(losses)
        distill_optim.update_params(loss)

    def baseline_step() -> None:
        with torch.no_grad():
            teacher(inputs, None, mode='tensor')
        losses = student(inputs, samples, mode='loss')
        loss, _ = student.parse_losses(losses)
        student_optim.update_params(loss)

    for _ in range(args.warmup):
        distill_step()
        baseline_step()
    # Alternate which goes first (baseline in even rounds), so neither always
    # runs on a warm cache. Only the wall times are reported.
    sync = make_sync(args.device.startswith('cuda'))
    times = run_interleaved(
        {'baseline': timed(baseline_step, sync),
         'distill': timed(distill_step, sync)},
        warmup=0,
        rounds=args.iters)
    d_times = [wall for wall, _ in times['distill']]
    b_times = [wall for wall, _ in times['baseline']]
    d, b = statistics.median(d_times), statistics.median(b_times)
    print(f'{type(alg).__name__}: device={args.device} '
          f'batch={args.batch_size} '
          f'image={args.size}x{args.size} iters={args.iters} '
          f'threads={torch.get_num_threads()}')
    print('                                         median       min')
    print(f'distillation step                      {d * 1e3:8.2f} ms '
          f'{min(d_times) * 1e3:8.2f} ms')
    print(f'teacher no_grad fwd + student step     {b * 1e3:8.2f} ms '
          f'{min(b_times) * 1e3:8.2f} ms')
    print(f'ratio (median): {d / b:.3f}   ratio (min): '
          f'{min(d_times) / min(b_times):.3f}   (target <= 1.10)')


if __name__ == '__main__':
    main()
