#!/usr/bin/python3
"""Write tests/fixtures/cam_methods/: an independent float64 oracle for the CAM family
(src/cam_methods.c), for the softmax score's gradient (src/kernels/elementwise.c) and for the
3x3 conv's input gradient (src/kernels/conv3x3_backward.c).

    /usr/bin/python3 tests/oracle/make_cam_fixtures.py [OUT_DIR]

Written from the papers' formulas (and pytorch-grad-cam's choices where the papers leave
one open: gradcam++'s 1e-6, xgradcam's 1e-7, eigencam's centring), in torch float64, sharing
no code with the C. For each case: a seeded activation A (H, W, K) (post-ReLU: about half
zeros) and gradient dA (some exact zeros), stored as float32 (the C's inputs); the oracle
computes from those float32 values, in float64, each method's map after ReLU, normalised by
its max (all zeros stay zeros), stored as float64. Also logit vectors with one huge logit and
d softmax(z)_c / dz by float64 autograd.

Conv: seeded w_hwio (3, 3, C, OC) and dy (H, W, OC), and dx (H, W, C) = d sum(dy * conv(x)) / dx
by float64 autograd of torch's conv2d (padding 1).

Files (little-endian): CASE_A.f32, CASE_dA.f32, CASE_METHOD.f64 (METHOD as named in
manifest.txt, '+' spelled 'p'), SM_z.f32, SM_dz.f64, CV_w.f32, CV_dy.f32, CV_dx.f64;
manifest.txt lists them:
    cam CASE H W K
    softmax NAME N c
    convbwd NAME H W C OC
Deterministic: same script, same files.
"""

import os
import sys

import torch

METHODS = ("gradcam", "hirescam", "gradcam-elementwise", "gradcam++", "xgradcam",
           "layercam", "eigencam", "eigengradcam")


def fname(method):
    return method.replace("+", "p")


def weighted(A, w):
    """sum_k w_k A[:, :, k]"""
    return (A * w[None, None, :]).sum(dim=2)


def first_pc_projection(X):
    """X (H, W, K) -> (H, W): the centred rows X_c projected on the first right singular
    vector v of X_c (Eigen-CAM, Muhammad & Yeasin 2020; centring as pytorch-grad-cam does),
    sign fixed so that sum(v) > 0 (else the first non-zero component positive)."""
    H, W, K = X.shape
    M = X.reshape(H * W, K)
    M = M - M.mean(dim=0, keepdim=True)
    _, _, Vh = torch.linalg.svd(M, full_matrices=False)
    v = Vh[0]
    s = v.sum()
    if s < 0 or (s == 0 and v[v != 0].numel() and v[v != 0][0] < 0):
        v = -v
    return (M @ v).reshape(H, W)


def cam(method, A, G):
    """One method's map (H, W) before the ReLU, from A and G = dA (H, W, K), float64."""
    HW = A.shape[0] * A.shape[1]
    S = A.sum(dim=(0, 1))                                   # S_k = sum_ij A_ij^k
    if method == "gradcam":        # Selvaraju et al. 2017, eq. 1-2: w_k = mean_ij dy/dA_ij^k
        return weighted(A, G.sum(dim=(0, 1)) / HW)
    if method == "hirescam":       # Draelos & Carin 2020: sum_k (dy/dA^k * A^k)
        return (G * A).sum(dim=2)
    if method == "gradcam-elementwise":   # ReLU of each element-wise product, then sum
        return torch.clamp(G * A, min=0).sum(dim=2)
    if method == "gradcam++":      # Chattopadhyay et al. 2018, eq. 19 with exp(score):
        g2, g3 = G ** 2, G ** 3    # alpha = g^2 / (2 g^2 + sum_ab A_ab g^3)
        alpha = g2 / (2 * g2 + S[None, None, :] * g3 + 1e-6)
        alpha = torch.where(G > 0, alpha, torch.zeros_like(alpha))
        w = (alpha * torch.clamp(G, min=0)).sum(dim=(0, 1))  # eq. 7: w = sum alpha relu(g)
        return weighted(A, w)
    if method == "xgradcam":       # Fu et al. 2020, eq. 8: w_k = sum_ij (A_ij / sum A) g_ij
        w = (G * A).sum(dim=(0, 1)) / (S + 1e-7)
        return weighted(A, w)
    if method == "layercam":       # Jiang et al. 2021: sum_k relu(g^k) * A^k
        return (torch.clamp(G, min=0) * A).sum(dim=2)
    if method == "eigencam":
        return first_pc_projection(A)
    if method == "eigengradcam":
        return first_pc_projection(G * A)
    raise ValueError(method)


def normalised(c):
    r = torch.clamp(c, min=0)
    m = r.max()
    return r / m if m > 0 else torch.zeros_like(r)


def make_case(gen, H, W, K, zero_frac=0.3, grad_sign=0):
    A = torch.clamp(torch.randn(H, W, K, generator=gen, dtype=torch.float64), min=0)
    G = 0.01 * torch.randn(H, W, K, generator=gen, dtype=torch.float64)
    G[torch.rand(H, W, K, generator=gen, dtype=torch.float64) < zero_frac] = 0
    if grad_sign < 0:
        G = -G.abs()
    return A.to(torch.float32), G.to(torch.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "cam_methods")
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(20261201)
    cases = [("c0", 7, 7, 16, {}), ("c1", 5, 3, 40, {}), ("c2", 14, 14, 32, {}),
             ("c3", 1, 1, 8, {}), ("c4", 4, 6, 12, {"zero_frac": 0.7}),
             ("c5", 6, 5, 24, {"grad_sign": -1}), ("c6", 1, 9, 20, {})]
    lines = []
    for name, H, W, K, kw in cases:
        A32, G32 = make_case(gen, H, W, K, **kw)
        if name == "c4":
            A32[:, :, 3] = 0   # a dead channel: S_k = 0 in gradcam++ and xgradcam
        A32.numpy().tofile(os.path.join(out, f"{name}_A.f32"))
        G32.numpy().tofile(os.path.join(out, f"{name}_dA.f32"))
        A, G = A32.to(torch.float64), G32.to(torch.float64)
        for m in METHODS:
            normalised(cam(m, A, G)).numpy().tofile(os.path.join(out, f"{name}_{fname(m)}.f64"))
        lines.append(f"cam {name} {H} {W} {K}")

    # softmax score: p_c saturates in float32 (1 - p_c lost to cancellation): 0.99999994 (s0)
    # and 1.0 (s1, 1 - p_c = 2.8e-9). Not more: float64 autograd cancels too (its
    # 1 - p_c carries 1e-16 absolute), so a truth needs 1 - p_c >> 1e-16 / 1e-7.
    for name, zc, c_big, c in (("s0", 18.8, 4, 4), ("s1", 22.0, 2, 2), ("s2", 30.0, 2, 7),
                               ("s3", 3.0, 1, 1)):
        z = torch.zeros(10, dtype=torch.float64)
        z[:] = torch.linspace(-0.5, 0.5, 10, dtype=torch.float64)
        z[c_big] = zc
        z32 = z.to(torch.float32)
        z32.numpy().tofile(os.path.join(out, f"{name}_z.f32"))
        zz = z32.to(torch.float64).requires_grad_(True)
        torch.softmax(zz, dim=0)[c].backward()
        zz.grad.numpy().tofile(os.path.join(out, f"{name}_dz.f64"))
        lines.append(f"softmax {name} 10 {c}")

    # conv input gradient: torch's own conv2d and autograd, nothing of the C's flip
    for name, H, W, C, OC in (("v0", 5, 7, 6, 9), ("v1", 1, 4, 3, 5), ("v2", 6, 6, 64, 3),
                              ("v3", 3, 1, 8, 13), ("v4", 8, 8, 17, 24)):
        w = (0.3 * torch.randn(3, 3, C, OC, generator=gen, dtype=torch.float64)).float()
        dy = torch.randn(H, W, OC, generator=gen, dtype=torch.float64).float()
        w.numpy().tofile(os.path.join(out, f"{name}_w.f32"))
        dy.numpy().tofile(os.path.join(out, f"{name}_dy.f32"))
        x = torch.zeros(1, C, H, W, dtype=torch.float64, requires_grad=True)
        y = torch.nn.functional.conv2d(x, w.double().permute(3, 2, 0, 1), padding=1)
        (y * dy.double().permute(2, 0, 1)[None]).sum().backward()
        x.grad[0].permute(1, 2, 0).contiguous().numpy().tofile(
            os.path.join(out, f"{name}_dx.f64"))
        lines.append(f"convbwd {name} {H} {W} {C} {OC}")

    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("# made by tests/oracle/make_cam_fixtures.py: see its docstring\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
