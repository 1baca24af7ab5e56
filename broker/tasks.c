/* Tasks, the broker's units of work, and the FIFOs that hold them: each
 * job's queue of tasks to lease, and the broker's list of tasks out with
 * workers (a task is on one list at a time). */
#include <stdlib.h>

#include "broker/internal.h"

void btask_push(btask_list *l, btask *t)
{
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    l->n++;
}

void btask_push_front(btask_list *l, btask *t)
{
    t->prev = NULL;
    t->next = l->head;
    if (l->head)
        l->head->prev = t;
    else
        l->tail = t;
    l->head = t;
    l->n++;
}

void btask_unlink(btask_list *l, btask *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->next = t->prev = NULL;
    l->n--;
}

void btask_free(btask *t)
{
    if (!t)
        return;
    free(t->images);
    free(t);
}

btask *btask_new(sm_broker *b, bjob *j, int method, sm_task_kind kind,
                 size_t n_images)
{
    btask *t = calloc(1, sizeof *t);
    if (!t || !(t->images = malloc(sizeof(size_t) * (n_images ? n_images : 1)))) {
        free(t);
        return NULL;
    }
    t->id = b->epoch | b->next_task++;
    t->job = j;
    t->method = method;
    t->kind = kind;
    return t;
}
