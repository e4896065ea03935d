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

The two-loop recursion is evaluated from inner products. Its scalars only need
``s_i . q``, ``y_i . q`` (one matrix product of the stored pairs with ``q = -g``), and the
pairwise ``s_i . y_j`` and ``y_i . y_j``, which change only by one row and column per new
pair (a second column in that product). The direction is then one more matrix product,
``-H g = H0 q + sum_i c_i s_i + sum_i e_i y_i``. This is the same arithmetic as the loop of
``history_size`` dot products and axpys each way, reordered: the pairs are read twice per
iteration in two large BLAS calls instead of 4 x ``history_size`` small ones, about 6x less
time at 256 px. The scalar part runs in float64.

Vectors are flat fp32 tensors; :meth:`LBFGS.step` updates ``x`` in place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
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
        m = history_size
        #: the pairs, by slot: ``_pairs[k, 0]`` is a step s, ``_pairs[k, 1]`` its y; (m, 2, n)
        self._pairs: torch.Tensor | None = None
        self._order: list[int] = []  # slots in use, oldest pair first
        self._rho = np.zeros(m)  # 1 / (y . s) by slot
        self._sy = np.zeros((m, m))  # _sy[a, b] = s_a . y_b (kept where a is older than b)
        self._yy = np.zeros((m, m))  # _yy[a, b] = y_a . y_b
        self._unseen: int | None = None  # slot of a pair whose inner products are not in yet
        self.h_diag = 1.0
        self.n_iter = 0
        self._prev_grad: torch.Tensor | None = None
        self._prev_step: torch.Tensor | None = None  # the last step taken (x - x_prev)
        self._prev_x: torch.Tensor | None = None

    @property
    def pairs_kept(self) -> int:
        """How many curvature pairs the next direction uses."""
        return len(self._order)

    def _remember(self, grad: torch.Tensor) -> None:
        if self._prev_grad is None or self._prev_step is None:
            return
        y = grad - self._prev_grad
        s = self._prev_step
        ys = float(y.dot(s))
        if ys <= CURVATURE_EPS:
            return
        if self._pairs is None:
            self._pairs = grad.new_empty((self.history_size, 2, grad.numel()))
        slot = self._order.pop(0) if len(self._order) == self.history_size else len(self._order)
        self._pairs[slot, 0].copy_(s)
        self._pairs[slot, 1].copy_(y)
        self._order.append(slot)
        self._rho[slot] = 1.0 / ys
        self.h_diag = ys / float(y.dot(y))
        self._unseen = slot

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """``-H g`` by the two-loop recursion (``-g`` before any curvature pair exists)."""
        if not self._order:
            return grad.neg()
        assert self._pairs is not None
        used = len(self._order)  # slots 0..used-1 (all of them once the history is full)
        rows = self._pairs[:used].reshape(2 * used, -1)  # s_0, y_0, s_1, y_1, ...
        new = self._unseen
        # products with g (q = -g is never formed: its products are these negated)
        vectors = torch.stack([grad, self._pairs[new, 1]]) if new is not None else grad[None]
        # (1 or 2, n) @ (n, 2 * used): one pass over the pairs (faster than rows @ (n, 2))
        products = (vectors @ rows.T).T.double().cpu().numpy()  # (2 * used, 1 or 2)
        if new is not None:  # the new y against every stored s and y
            self._sy[:used, new] = products[0::2, 1]
            self._yy[:used, new] = self._yy[new, :used] = products[1::2, 1]
            self._unseen = None
        order = np.asarray(self._order)
        sq, yq = -products[0::2, 0][order], -products[1::2, 0][order]  # s_i . q, y_i . q
        sy = self._sy[np.ix_(order, order)]
        yy = self._yy[np.ix_(order, order)]
        rho = self._rho[order]
        k = len(order)
        alpha = np.zeros(k)
        for i in range(k - 1, -1, -1):  # newest first: s_i . q_i, q_i = q - sum_{j>i} a_j y_j
            alpha[i] = rho[i] * (sq[i] - sy[i, i + 1:] @ alpha[i + 1:])
        h0 = self.h_diag
        y_dot_r0 = h0 * (yq - yy @ alpha)  # y_i . H0 (q - sum_j a_j y_j)
        beta = np.zeros(k)
        for i in range(k):  # oldest first: y_i . r_i, r_i = r0 + sum_{j<i} (a_j - b_j) s_j
            beta[i] = rho[i] * (y_dot_r0[i] + (alpha[:i] - beta[:i]) @ sy[:i, i])
        coefficients = np.zeros(2 * used)
        coefficients[2 * order] = alpha - beta  # on s_i
        coefficients[2 * order + 1] = -h0 * alpha  # on y_i
        r = rows.T @ torch.from_numpy(coefficients).to(rows)
        return r.sub_(grad, alpha=h0)  # + H0 q

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> bool:
        """One iteration from the gradient ``grad`` at ``x`` (both flat fp32).

        Returns False, leaving ``x`` unchanged, when the direction is no longer a descent
        direction by more than ``tolerance_change`` (converged or numerically stuck).
        """
        grad = grad.detach().to(torch.float32)
        self.n_iter += 1
        if self.n_iter > 1:
            self._remember(grad)
        if self._order:
            d = self.direction(grad)
            t = self.lr
        else:
            d = grad.neg()
            t = self.first_step / max(float(grad.abs().max()), 1e-30)
        if float(grad.dot(d)) > -self.tolerance_change:
            return False
        self._prev_grad = grad.clone()
        self._prev_x = x.detach().clone()
        self._take(x, d.mul_(t) if t != 1.0 else d)
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
