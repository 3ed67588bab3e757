"""ResourceEstimator against torchvision's published multiply-adds.

Random weights, 224x224, batch 1, eval mode. The published figures are the
"GFLOPS" column of torchvision's model documentation (multiply-adds).

Usage:
    python benchmarks/estimator_accuracy.py [--models resnet50 vit_b_16]
"""
import argparse

import torch
import torchvision

PUBLISHED_GMACS = {
    'resnet50': 4.089,
    'mobilenet_v2': 0.301,
    'vit_b_16': 17.564,
    'swin_t': 4.491,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models', nargs='+', default=list(PUBLISHED_GMACS))
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from mmrazor.models.task_modules import ResourceEstimator
    estimator = ResourceEstimator(input_shape=(1, 3, 224, 224))
    print(f'{"model":<14}{"published G":>12}{"ours G":>12}{"diff %":>9}'
          f'{"params M":>10}  uncounted ops (calls)')
    for name in args.models:
        if name not in PUBLISHED_GMACS:
            raise KeyError(f'no published figure for {name!r}; known: '
                           f'{sorted(PUBLISHED_GMACS)}')
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None)
        result = estimator.estimate(model)
        ours = result['flops'] / 1e9
        published = PUBLISHED_GMACS[name]
        diff = 100.0 * (ours - published) / published
        uncounted = ', '.join(f'{k.split(".")[-1]} {v}'
                              for k, v in result['uncounted'].items())
        print(f'{name:<14}{published:>12.3f}{ours:>12.4f}{diff:>+9.3f}'
              f'{result["params"] / 1e6:>10.3f}  {uncounted}')


if __name__ == '__main__':
    main()
