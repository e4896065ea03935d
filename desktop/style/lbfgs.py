"""Limited-memory BFGS with a fixed step, the optimiser neural-style and Gatys et al. use.

This is the algorithm of Lua ``optim.lbfgs`` (neural-style's default) and of
``torch.optim.LBFGS(line_search_fn=None)``, written out so the loop can yield between
iterations and keep its state in fp32 whatever precision the network runs in:

* the first direction is steepest descent, ``d = -g``. Its step is where we differ from
  those two: they take ``t = min(1, 1/||g||_1) * lr``, which for the course's unnormalised
  losses (gradients of 1e6 and more) moves no pixel by even 1e-4 and so measures no
  curvature in bf16; we take ``t = first_step / max|g|``, moving the most-pushed pixel by
  ``first_step`` (1 grey level of 255 by default). Until a curvature pair is stored the
  directions stay steepest descent with that step;
* later directions are ``d = -H g`` from the two-loop recursion over the last
  ``history_size`` pairs ``s = x_k+1 - x_k``, ``y = g_k+1 - g_k`` (a pair is kept only when
  the curvature ``y.s > 1e-10``), with initial Hessian scale ``H0 = y.s / y.y``; the step is
  ``t = lr``;
* no line search: each iteration costs exactly one function evaluation, so "iteration"
  and "function evaluation" count the same thing, as in neural-style.

Vectors are flat fp32 tensors; :meth:`LBFGS.step` updates ``x`` in place.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CURVATURE_EPS = 1e-10


class LBFGS:
    """``opt.step(x, g)`` moves ``x`` (in place) along the L-BFGS direction from gradient ``g``."""

    def __init__(self, history_size: int = 100, lr: float = 1.0,
                 tolerance_change: float = 1e-9, first_step: float = 1.0) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.history_size = history_size
        self.lr = float(lr)
        self.tolerance_change = tolerance_change
        self.first_step = float(first_step)
        self.steps: list[torch.Tensor] = []  # s_i
        self.grad_changes: list[torch.Tensor] = []  # y_i
        self.rho: list[float] = []  # 1 / (y_i . s_i)
        self.h_diag = 1.0
        self.n_iter = 0
        self._prev_grad: torch.Tensor | None = None
        self._prev_step: torch.Tensor | None = None  # t * d of the last step

    def _remember(self, grad: torch.Tensor) -> None:
        if self._prev_grad is None or self._prev_step is None:
            return
        y = grad - self._prev_grad
        s = self._prev_step
        ys = float(y.dot(s))
        if ys > CURVATURE_EPS:
            if len(self.steps) == self.history_size:
                self.steps.pop(0)
                self.grad_changes.pop(0)
                self.rho.pop(0)
            self.steps.append(s)
            self.grad_changes.append(y)
            self.rho.append(1.0 / ys)
            self.h_diag = ys / float(y.dot(y))

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """``-H g`` by the two-loop recursion (``-g`` before any curvature pair exists)."""
        q = grad.neg()
        alphas = [0.0] * len(self.steps)
        for i in range(len(self.steps) - 1, -1, -1):
            alphas[i] = float(self.steps[i].dot(q)) * self.rho[i]
            q.add_(self.grad_changes[i], alpha=-alphas[i])
        r = q.mul_(self.h_diag)
        for i in range(len(self.steps)):
            beta = float(self.grad_changes[i].dot(r)) * self.rho[i]
            r.add_(self.steps[i], alpha=alphas[i] - beta)
        return r

    def step(self, x: torch.Tensor, grad: torch.Tensor,
             project: Callable[[torch.Tensor], None] | None = None) -> bool:
        """One iteration from the gradient ``grad`` at ``x`` (both flat fp32).

        ``project(x)``, when given, moves ``x`` back into the feasible set in place after
        the step (e.g. clamps pixels to 0..255); the step remembered for the curvature
        pairs is then the one actually taken.

        Returns False, leaving ``x`` unchanged, when the direction is no longer a descent
        direction by more than ``tolerance_change`` (converged or numerically stuck).
        """
        grad = grad.detach().to(torch.float32)
        self.n_iter += 1
        if self.n_iter > 1:
            self._remember(grad)
        if self.steps:
            d = self.direction(grad)
            t = self.lr
        else:
            d = grad.neg()
            t = self.first_step / max(float(grad.abs().max()), 1e-30)
        if float(grad.dot(d)) > -self.tolerance_change:
            return False
        self._prev_grad = grad.clone()
        step = d.mul_(t)
        with torch.no_grad():
            if project is None:
                x.add_(step)
            else:
                before = x.clone()
                x.add_(step)
                project(x)
                step = x.sub(before)
        self._prev_step = step
        return True
