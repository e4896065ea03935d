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
* no line search: an iteration normally costs exactly one function evaluation, so
  "iteration" and "function evaluation" count the same thing, as in neural-style. One
  safeguard neither of those has: when a step *raises* J, the caller may halve it
  (:meth:`LBFGS.retreat`) and evaluate again. Without it, the first quasi-Newton steps on
  the course's losses (whose curvature differs by orders of magnitude between pixels and
  layers) can overshoot so far that the content is lost for good (tubingen at 512 px: J
  rose 6x at iteration 5 and the houses never came back);
* an optional ``project`` puts each new ``x`` back into a feasible set (valid pixels);
  the steps remembered for the curvature pairs are then the ones actually taken.

Vectors are flat fp32 tensors; :meth:`LBFGS.step` updates ``x`` in place.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CURVATURE_EPS = 1e-10


class LBFGS:
    """``opt.step(x, g)`` moves ``x`` (in place) along the L-BFGS direction from gradient ``g``."""

    def __init__(self, history_size: int = 100, lr: float = 1.0,
                 tolerance_change: float = 1e-9, first_step: float = 1.0,
                 project: Callable[[torch.Tensor], None] | None = None) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.history_size = history_size
        self.lr = float(lr)
        self.tolerance_change = tolerance_change
        self.first_step = float(first_step)
        self.project = project
        self.steps: list[torch.Tensor] = []  # s_i
        self.grad_changes: list[torch.Tensor] = []  # y_i
        self.rho: list[float] = []  # 1 / (y_i . s_i)
        self.h_diag = 1.0
        self.n_iter = 0
        self._prev_grad: torch.Tensor | None = None
        self._prev_step: torch.Tensor | None = None  # the last step taken (x - x_prev)
        self._prev_x: torch.Tensor | None = None

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

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> bool:
        """One iteration from the gradient ``grad`` at ``x`` (both flat fp32).

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
        self._prev_x = x.detach().clone()
        self._take(x, d.mul_(t))
        return True

    def retreat(self, x: torch.Tensor, factor: float = 0.5) -> None:
        """Shorten the last step to ``factor`` of its length (``x`` is moved in place)."""
        if self._prev_x is None or self._prev_step is None:
            raise RuntimeError("retreat() needs a step() first")
        step = self._prev_step.mul_(factor)
        with torch.no_grad():
            x.copy_(self._prev_x)
        self._take(x, step)

    def _take(self, x: torch.Tensor, step: torch.Tensor) -> None:
        with torch.no_grad():
            x.add_(step)
            if self.project is not None:
                self.project(x)
                assert self._prev_x is not None
                step = x.sub(self._prev_x)
        self._prev_step = step
